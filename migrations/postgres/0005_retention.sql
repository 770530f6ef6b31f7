-- Retention: how long each tenant's inbound events keep their bodies, and the daily
-- counts that survive the purge.

-- Days an inbound event keeps its body, headers and answer (1..3650).
ALTER TABLE tenants ADD COLUMN retention_days BIGINT NOT NULL DEFAULT 30;

-- When the purge emptied this event (its metadata stays for audit counts and links).
ALTER TABLE inbound_events ADD COLUMN purged_at BIGINT;

-- Counts of purged events per UTC day, source and status.
CREATE TABLE event_counts_daily (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day        TEXT NOT NULL,
    source     TEXT NOT NULL,
    status     TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, source, status)
);

-- What the purge looks for: old events not yet purged, old attempts.
CREATE INDEX inbound_events_unpurged ON inbound_events (tenant_id, received_at) WHERE purged_at IS NULL;
CREATE INDEX job_attempts_started ON job_attempts (tenant_id, started_at);
CREATE INDEX delivery_attempts_attempted ON delivery_attempts (attempted_at);
