-- Secrets, encrypted by the workspace's key (kept in a 0600 file outside the database).
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    ciphertext TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT NOT NULL
);
