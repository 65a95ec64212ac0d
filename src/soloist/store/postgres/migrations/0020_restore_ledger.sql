-- What a snapshot restore must never rewind: the dispatch ledger (every intent's outcome, by
-- idempotency key, so a replay after a restore returns it instead of acting twice) and the
-- highest version ever given to each definition (so a version number never means two
-- contents). pg_dump leaves these tables out of every snapshot (PostgresStore.KEPT_TABLES),
-- so pg_restore never touches them. IF NOT EXISTS: restoring an older snapshot runs this
-- migration again.
CREATE TABLE IF NOT EXISTS dispatch_ledger (
    idempotency_key text             PRIMARY KEY,
    run_id          text,
    step_id         text,
    tool            text,
    status          text             NOT NULL,
    result          text,
    error           text,
    recorded_at     double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS dispatch_ledger_by_time ON dispatch_ledger (recorded_at);
CREATE TABLE IF NOT EXISTS version_marks (
    kind    text    NOT NULL,
    name    text    NOT NULL,
    version integer NOT NULL,
    PRIMARY KEY (kind, name)
);
-- The process registry describes the processes alive now, not at a snapshot's moment: a
-- restore must neither bring back the rows of processes long gone nor drop those running.
CREATE TABLE IF NOT EXISTS processes (
    id           text             PRIMARY KEY,
    info         text             NOT NULL,
    heartbeat_at double precision NOT NULL
);
DROP TABLE IF EXISTS workers;
