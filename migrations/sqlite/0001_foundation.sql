-- Foundation: tenants, console users, sessions, API keys, passes and their history.
-- Timestamps are UTC milliseconds since the epoch; ids are prefixed text.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT,
    disabled       BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

CREATE TABLE memberships (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'marketer')),
    PRIMARY KEY (user_id, tenant_id)
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    data         TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE passes (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    pass_type        TEXT NOT NULL,
    identifiers      TEXT NOT NULL,
    additional_data  TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX passes_listing ON passes (tenant_id, created_at, id);
CREATE INDEX passes_type ON passes (tenant_id, pass_type);

-- One row per identifier, normalised for matching (email: trimmed, lower case).
CREATE TABLE pass_identifiers (
    tenant_id  TEXT NOT NULL,
    pass_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, pass_id, name),
    FOREIGN KEY (tenant_id, pass_id) REFERENCES passes(tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX pass_identifiers_lookup ON pass_identifiers (tenant_id, name, value);

-- Every version of a pass after the first: what changed and why.
CREATE TABLE pass_versions (
    tenant_id   TEXT NOT NULL,
    pass_id     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    changes     TEXT NOT NULL,
    cause       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pass_id, version),
    FOREIGN KEY (tenant_id, pass_id) REFERENCES passes(tenant_id, id) ON DELETE CASCADE
);
