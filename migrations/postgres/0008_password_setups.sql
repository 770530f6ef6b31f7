-- One-time links with which a person added to a tenant chooses their own password.
-- Only the SHA-256 of the link's token is kept; a link is used once.
CREATE TABLE password_setups (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX password_setups_user ON password_setups (user_id);
