-- Soloist schema, version 1 (SQLite). Times are epoch seconds (REAL); JSON is TEXT.

CREATE TABLE definitions (
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    source      TEXT,
    deployed_by TEXT    NOT NULL,
    deployed_at REAL    NOT NULL,
    note        TEXT,
    PRIMARY KEY (kind, name, version)
);

CREATE TABLE runs (
    id               TEXT    PRIMARY KEY,
    playbook         TEXT    NOT NULL,
    playbook_version INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    inputs           TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    created_at       REAL    NOT NULL,
    deadline_at      REAL,
    finished_at      REAL,
    trigger          TEXT,
    error            TEXT,
    steps_remaining  INTEGER NOT NULL,
    created_by       TEXT    NOT NULL,
    final_state      TEXT
);
CREATE INDEX runs_by_state ON runs (state, created_at);
CREATE INDEX runs_deadline ON runs (deadline_at) WHERE state = 'running' AND deadline_at IS NOT NULL;

CREATE TABLE steps (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT    NOT NULL REFERENCES runs (id),
    step_id          TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    playbook         TEXT    NOT NULL,
    playbook_version INTEGER NOT NULL,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    resume           TEXT    NOT NULL DEFAULT 'execute',
    attempt          INTEGER NOT NULL DEFAULT 1,
    pending_needs    INTEGER NOT NULL,
    available_at     REAL    NOT NULL,
    lease_owner      TEXT,
    lease_expires    REAL,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    output           TEXT,
    error            TEXT,
    guidance         TEXT,
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    UNIQUE (run_id, step_id)
);
CREATE INDEX steps_ready ON steps (priority DESC, available_at, id) WHERE state = 'ready';
CREATE INDEX steps_leased ON steps (lease_expires) WHERE lease_owner IS NOT NULL;

CREATE TABLE intents (
    run_id          TEXT    NOT NULL,
    step_id         TEXT    NOT NULL,
    idx             INTEGER NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    tool            TEXT    NOT NULL,
    args            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    result          TEXT,
    error           TEXT,
    created_at      REAL    NOT NULL,
    dispatched_at   REAL,
    PRIMARY KEY (run_id, step_id, idx)
);

CREATE TABLE approvals (
    id               TEXT    PRIMARY KEY,
    run_id           TEXT    NOT NULL,
    step_id          TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    reason           TEXT    NOT NULL,
    message          TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    expires_at       REAL,
    default_decision TEXT,
    decision         TEXT,
    decided_by       TEXT,
    decided_at       REAL,
    note             TEXT
);
CREATE INDEX approvals_open ON approvals (created_at) WHERE decision IS NULL;
CREATE INDEX approvals_run ON approvals (run_id);

CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,
    kind      TEXT    NOT NULL,
    run_id    TEXT,
    step_id   TEXT,
    actor     TEXT    NOT NULL,
    data      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, seq);

-- The log is append-only; the hash chain detects what gets past these guards.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the episodic log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the episodic log is append-only'); END;

CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE bus (
    id           INTEGER PRIMARY KEY,
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    run_id       TEXT,
    created_at   REAL NOT NULL,
    processed_at REAL
);
CREATE INDEX bus_pending ON bus (id) WHERE processed_at IS NULL;

CREATE TABLE leadership (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);

CREATE TABLE cron_state (
    playbook      TEXT    NOT NULL,
    trigger_index INTEGER NOT NULL,
    last_fire     REAL    NOT NULL,
    PRIMARY KEY (playbook, trigger_index)
);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    info         TEXT NOT NULL,
    heartbeat_at REAL NOT NULL
);
