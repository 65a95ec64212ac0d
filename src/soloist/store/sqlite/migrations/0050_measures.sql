-- The operator measures (see soloist/store/measures.py) read a window of runs by their
-- creation, the first completed run of each version, and two rare kinds of event: those
-- that may be a failure, and a person's decisions and cancels. Partial indexes keep the
-- last two small, so the many ordinary transitions cost them nothing. IF NOT EXISTS:
-- restoring an older snapshot runs this migration again.
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, playbook, state);
CREATE INDEX IF NOT EXISTS runs_done_by_version ON runs (playbook, playbook_version, finished_at)
    WHERE state = 'done';
CREATE INDEX IF NOT EXISTS events_failures ON events (run_id, seq)
    WHERE kind = 'step.transition'
      AND (json_extract(data, '$.error') IS NOT NULL
           OR json_extract(data, '$.reason') IS NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_people ON events (ts)
    WHERE kind IN ('approval.decided', 'run.cancelled', 'run.compensating');
-- The step duration histogram reads two columns of the finished steps: from here alone.
CREATE INDEX IF NOT EXISTS steps_finished ON steps (started_at, finished_at)
    WHERE state IN ('done', 'failed', 'compensated');
