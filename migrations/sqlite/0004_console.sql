-- Console: key usage and rotation, settings history, login throttling, sign-out everywhere.

-- Where a key was last used from; a rotated key keeps working until expires_at.
ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;

-- Every change to an integration: who, when, and what changed (secrets as ••••).
CREATE TABLE settings_history (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    area        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    changes     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX settings_history_area ON settings_history (tenant_id, area, seq);

-- Failed sign-ins, per account and per client address, for throttling.
CREATE TABLE login_failures (
    subject     TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX login_failures_subject ON login_failures (subject, at);

-- Sessions started before this time are no longer valid ("sign out everywhere").
ALTER TABLE users ADD COLUMN sessions_valid_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN sso_subject TEXT;

-- A tenant admin can take a member's access to the tenant away without deleting them.
ALTER TABLE memberships ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
