-- Who may use the API and the dashboard (see soloist/store/access.py): bearer tokens,
-- dashboard sessions and one-time login links, each by the SHA-256 of its secret, never
-- the secret. pg_dump leaves it out of every snapshot (PostgresStore.KEPT_TABLES): a
-- restore must neither bring back a token revoked since nor drop one made since.
CREATE TABLE IF NOT EXISTS access_tokens (
    id           text             PRIMARY KEY,
    name         text             NOT NULL,
    kind         text             NOT NULL,
    scopes       text             NOT NULL,
    digest       text             NOT NULL UNIQUE,
    created_at   double precision NOT NULL,
    created_by   text             NOT NULL,
    expires_at   double precision,
    last_used_at double precision,
    revoked_at   double precision
);
-- One live bearer token per name, so `soloist token revoke NAME` means one token.
CREATE UNIQUE INDEX IF NOT EXISTS access_tokens_live_name ON access_tokens (name)
    WHERE kind = 'token' AND revoked_at IS NULL;
