-- Canonical knowledge: facts are never overwritten; each write is a new version that
-- records who wrote it, why, and which run and step caused it.
CREATE TABLE facts (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    op          TEXT    NOT NULL,
    value       TEXT,
    actor       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    run_id      TEXT,
    step_id     TEXT,
    reverts     INTEGER,
    valid_from  REAL    NOT NULL,
    valid_to    REAL,
    expires_at  REAL,
    recorded_at REAL    NOT NULL,
    UNIQUE (namespace, subject, key, version)
);
CREATE INDEX facts_by_run ON facts (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX facts_by_namespace ON facts (namespace, subject, key);

CREATE TRIGGER facts_no_update BEFORE UPDATE ON facts
BEGIN SELECT RAISE(ABORT, 'facts are append-only: write a new version'); END;
CREATE TRIGGER facts_no_delete BEFORE DELETE ON facts
BEGIN SELECT RAISE(ABORT, 'facts are append-only: write a new version'); END;
