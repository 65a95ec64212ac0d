-- The process registry says when each process started, which version of Soloist it runs
-- and whether a person asked it to drain (`soloist workers drain`: claim nothing more,
-- finish the steps in hand, exit). IF NOT EXISTS: restoring an older snapshot runs this
-- migration again.
ALTER TABLE processes ADD COLUMN IF NOT EXISTS started_at DOUBLE PRECISION;
ALTER TABLE processes ADD COLUMN IF NOT EXISTS version TEXT;
ALTER TABLE processes ADD COLUMN IF NOT EXISTS drain_requested_at DOUBLE PRECISION;
