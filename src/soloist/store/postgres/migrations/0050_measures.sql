-- The operator measures (see soloist/store/measures.py) read a window of runs by their
-- creation, the first completed run of each version, and two rare kinds of event: those
-- that may be a failure, and a person's decisions and cancels. Partial indexes keep the
-- last two small, so the many ordinary transitions cost them nothing.
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, playbook, state);
CREATE INDEX IF NOT EXISTS runs_done_by_version ON runs (playbook, playbook_version, finished_at)
    WHERE state = 'done';
CREATE INDEX IF NOT EXISTS events_failures ON events (run_id, seq)
    WHERE kind = 'step.transition'
      AND ((data::jsonb ->> 'error') IS NOT NULL OR (data::jsonb ->> 'reason') IS NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_people ON events (ts)
    WHERE kind IN ('approval.decided', 'run.cancelled', 'run.compensating');
-- The step duration histogram reads two columns of the finished steps: from here alone.
CREATE INDEX IF NOT EXISTS steps_finished ON steps (started_at, finished_at)
    WHERE state IN ('done', 'failed', 'compensated');
-- The planner knows nothing of how few events have an error or a reason, and would read
-- every event rather than the partial index above: ANALYZE samples them from now on.
CREATE STATISTICS IF NOT EXISTS events_error_reason
    ON (data::jsonb ->> 'error'), (data::jsonb ->> 'reason') FROM events;
