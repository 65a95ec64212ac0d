-- The process registry says when each process started, which version of Soloist it runs
-- and whether a person asked it to drain (`soloist workers drain`: claim nothing more,
-- finish the steps in hand, exit). A new table in place of the old, not ADD COLUMN:
-- restoring an older snapshot runs this migration again, and SQLite has no ADD COLUMN IF
-- NOT EXISTS. The rows are carried over (a restore refuses while a process is alive, so a
-- second pass has none to lose); a row carried over has no start or version until its
-- process restarts.
CREATE TABLE IF NOT EXISTS kept.processes_next (
    id                 TEXT PRIMARY KEY,
    info               TEXT NOT NULL,
    heartbeat_at       REAL NOT NULL,
    started_at         REAL,
    version            TEXT,
    drain_requested_at REAL
);
INSERT OR IGNORE INTO kept.processes_next (id, info, heartbeat_at)
SELECT id, info, heartbeat_at FROM kept.processes;
DROP TABLE kept.processes;
ALTER TABLE kept.processes_next RENAME TO processes;
