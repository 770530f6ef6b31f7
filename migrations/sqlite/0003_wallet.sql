-- Wallet delivery: pass types, sealed wallet credentials, Apple device registrations.

CREATE TABLE pass_types (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE wallet_credentials (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    summary     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

-- A device that added a pass to Apple Wallet, with the token APNs reaches it by.
CREATE TABLE apple_registrations (
    tenant_id             TEXT NOT NULL,
    device_id             TEXT NOT NULL,
    pass_type_identifier  TEXT NOT NULL,
    pass_id               TEXT NOT NULL,
    push_token            TEXT NOT NULL,
    -- The newest pass version this device was pushed, so a retry skips it.
    pushed_version        BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, pass_type_identifier, pass_id)
);
CREATE INDEX apple_registrations_pass ON apple_registrations (tenant_id, pass_id);

-- Whether a wallet.refresh job is queued for the pass's owed refresh.
ALTER TABLE wallet_refreshes ADD COLUMN job_pending BIGINT NOT NULL DEFAULT 0;

-- The Google Wallet object of each pass, and the newest version Google has.
CREATE TABLE google_objects (
    tenant_id          TEXT NOT NULL,
    pass_id            TEXT NOT NULL,
    object_id          TEXT NOT NULL,
    delivered_version  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, pass_id)
);

-- Messages added to Google objects: Google allows three notifying ones per 24 h.
CREATE TABLE google_messages (
    tenant_id  TEXT NOT NULL,
    pass_id    TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    notify     BIGINT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX google_messages_pass ON google_messages (tenant_id, pass_id, sent_at);
