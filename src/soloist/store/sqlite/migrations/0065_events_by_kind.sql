-- A read model over one kind of event (the overrides a person made at gates, see
-- soloist/workspace/overrides.py) reads those events newest first, from here alone.
-- IF NOT EXISTS: restoring an older snapshot runs this migration again.
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, seq);
