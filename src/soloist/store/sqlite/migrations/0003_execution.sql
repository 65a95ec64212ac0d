-- The execution plane: pinned versions per run, the cost ledger, the response cache and
-- the circuit breakers that every worker shares.
ALTER TABLE runs ADD COLUMN pins TEXT;

CREATE TABLE llm_calls (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT,
    step_id       TEXT,
    playbook      TEXT,
    provider      TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    latency_ms    REAL    NOT NULL,
    cost_usd      REAL    NOT NULL,
    cached        INTEGER NOT NULL,
    created_at    REAL    NOT NULL
);
CREATE INDEX llm_calls_by_run ON llm_calls (run_id);
CREATE INDEX llm_calls_by_time ON llm_calls (created_at);

CREATE TABLE llm_cache (
    key        TEXT    PRIMARY KEY,
    response   TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    hits       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE breakers (
    name       TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,
    failures   INTEGER NOT NULL,
    opened_at  REAL,
    updated_at REAL    NOT NULL
);
