-- Who may use the API and the dashboard (see soloist/store/access.py): bearer tokens,
-- dashboard sessions and one-time login links, each by the SHA-256 of its secret, never
-- the secret. In `kept`, beside the dispatch ledger: a snapshot restore must neither bring
-- back a token revoked since nor drop one made since. IF NOT EXISTS: restoring an older
-- snapshot runs this migration again.
CREATE TABLE IF NOT EXISTS kept.access_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    digest       TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   REAL,
    last_used_at REAL,
    revoked_at   REAL
);
-- One live bearer token per name, so `soloist token revoke NAME` means one token.
CREATE UNIQUE INDEX IF NOT EXISTS kept.access_tokens_live_name ON access_tokens (name)
    WHERE kind = 'token' AND revoked_at IS NULL;
