-- Listener core: inbound events, the job queue, integrations, customers, deliveries.

-- Every request a listener received: accepted ones with their body, rejected ones
-- with a cause code (and never the body of an unauthenticated request).
CREATE TABLE inbound_events (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    detail        TEXT,
    dedupe_key    TEXT,
    body          TEXT,
    headers       TEXT NOT NULL,
    response      TEXT,
    key_id        TEXT,
    journey_id    TEXT,
    activity_id   TEXT,
    definition_instance_id TEXT,
    key_value     TEXT,
    items         BIGINT NOT NULL DEFAULT 0,
    items_done    BIGINT NOT NULL DEFAULT 0,
    processed_at  BIGINT,
    replay_of     TEXT
);
CREATE UNIQUE INDEX inbound_events_dedupe ON inbound_events (tenant_id, source, dedupe_key);
CREATE INDEX inbound_events_listing ON inbound_events (tenant_id, received_at DESC, id DESC);
CREATE INDEX inbound_events_rejections ON inbound_events (tenant_id, status, received_at);

-- The durable job queue. `ordering_key` serialises jobs that must run in order.
CREATE TABLE jobs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    ordering_key  TEXT,
    event_id      TEXT,
    status        TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    run_at        BIGINT NOT NULL,
    locked_by     TEXT,
    locked_until  BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- Partial indexes keep claims fast however many finished jobs the table holds.
CREATE INDEX jobs_pending ON jobs (seq) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_pending_ordering ON jobs (ordering_key, seq) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_event ON jobs (event_id);

CREATE TABLE job_attempts (
    id           TEXT PRIMARY KEY,
    job_id       TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    worker       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT,
    error        TEXT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, attempt);

CREATE TABLE actito_settings (
    tenant_id           TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    api_base_url        TEXT NOT NULL,
    entity              TEXT NOT NULL,
    api_key             TEXT NOT NULL,
    profile_table_id    TEXT NOT NULL,
    identifier_mapping  TEXT NOT NULL,
    data_mapping        TEXT NOT NULL,
    callback_hosts      TEXT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE sfmc_settings (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    customer_key  TEXT,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sfmc_keys (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id            TEXT NOT NULL,
    secret            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_verified_at  BIGINT,
    PRIMARY KEY (tenant_id, key_id)
);

-- Customers as Actito knows them, by Actito profile id.
CREATE TABLE customers (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    actito_profile_id  TEXT NOT NULL,
    attributes         TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, actito_profile_id)
);

-- Outbound calls: Actito callbacks now, wallet pushes later. One row per target,
-- with its attempts in `delivery_attempts`.
CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    pass_id      TEXT,
    event_id     TEXT,
    target       TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_status  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX deliveries_listing ON deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_pass ON deliveries (tenant_id, pass_id);

CREATE TABLE delivery_attempts (
    id           TEXT PRIMARY KEY,
    delivery_id  TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempted_at BIGINT NOT NULL,
    status_code  BIGINT,
    latency_ms   BIGINT NOT NULL,
    error        TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempted_at);

ALTER TABLE pass_versions ADD COLUMN message TEXT;
ALTER TABLE pass_versions ADD COLUMN significant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE pass_versions ADD COLUMN event_id TEXT;

-- The newest version of each pass that its wallets have yet to receive: many updates
-- to one pass coalesce into one row, so wallets get one refresh, never a storm.
CREATE TABLE wallet_refreshes (
    tenant_id     TEXT NOT NULL,
    pass_id       TEXT NOT NULL,
    version       BIGINT NOT NULL,
    -- The newest owed version that was significant (0: none).
    significant   BIGINT NOT NULL DEFAULT 0,
    message       TEXT,
    requested_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pass_id)
);
