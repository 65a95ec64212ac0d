-- Wait steps and the workspace's clock (see soloist/store/waits.py). A step that waits
-- for an event or a time has one row here; `outcome` is set once, when it ends. The
-- clock's one row holds how far the workspace's clock is ahead of the database's (only a
-- workspace made for rehearsals moves it). IF NOT EXISTS: restoring an older snapshot
-- runs this migration again.
CREATE TABLE IF NOT EXISTS waits (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    topic       TEXT,
    expression  TEXT,
    scope       TEXT NOT NULL,
    deadline    REAL,
    created_at  REAL NOT NULL,
    outcome     TEXT,
    event       TEXT,
    resolved_at REAL,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS waits_open ON waits (deadline) WHERE outcome IS NULL;
-- A wait that begins looks back over the bus since its run began, by topic.
CREATE INDEX IF NOT EXISTS bus_by_topic ON bus (topic, created_at);
CREATE TABLE IF NOT EXISTS clock (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    offset_seconds REAL NOT NULL
);
