-- What a snapshot restore must never rewind, in the attached database `kept` (a file of its
-- own beside the store, see SQLiteStore): the dispatch ledger (every intent's outcome, by
-- idempotency key, so a replay after a restore returns it instead of acting twice) and the
-- highest version ever given to each definition (so a version number never means two
-- contents). IF NOT EXISTS: restoring an older snapshot runs this migration again.
CREATE TABLE IF NOT EXISTS kept.dispatch_ledger (
    idempotency_key TEXT PRIMARY KEY,
    run_id          TEXT,
    step_id         TEXT,
    tool            TEXT,
    status          TEXT NOT NULL,
    result          TEXT,
    error           TEXT,
    recorded_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS kept.dispatch_ledger_by_time ON dispatch_ledger (recorded_at);
CREATE TABLE IF NOT EXISTS kept.version_marks (
    kind    TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
-- The process registry describes the processes alive now, not at a snapshot's moment: a
-- restore must neither bring back the rows of processes long gone nor drop those running.
CREATE TABLE IF NOT EXISTS kept.processes (
    id           TEXT PRIMARY KEY,
    info         TEXT NOT NULL,
    heartbeat_at REAL NOT NULL
);
DROP TABLE IF EXISTS workers;
