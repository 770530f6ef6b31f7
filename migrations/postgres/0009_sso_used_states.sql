-- Single sign-on: the `state` of each completed sign-in, until its pending cookie
-- expires, so a replayed callback is refused on every replica.
CREATE TABLE sso_used_states (
    state TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sso_used_states_expiry ON sso_used_states (expires_at);
