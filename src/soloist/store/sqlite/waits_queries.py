"""SQLite statements of wait steps and the workspace's clock (``soloist.store.waits``)."""

begin_wait = """
INSERT INTO waits (run_id, step_id, topic, expression, scope, deadline, created_at)
VALUES (:run_id, :step_id, :topic, :expression, :scope, :deadline, :created_at)
ON CONFLICT (run_id, step_id) DO NOTHING
"""
get_wait = "SELECT * FROM waits WHERE run_id = :run_id AND step_id = :step_id"
open_waits = """
SELECT w.* FROM waits w JOIN steps s ON s.run_id = w.run_id AND s.step_id = w.step_id
WHERE w.outcome IS NULL AND s.state = 'waiting'
ORDER BY w.created_at LIMIT :limit
"""
due_waits = """
SELECT w.* FROM waits w JOIN steps s ON s.run_id = w.run_id AND s.step_id = w.step_id
WHERE w.outcome IS NULL AND w.deadline IS NOT NULL AND w.deadline <= :now
  AND s.state = 'waiting'
ORDER BY w.deadline LIMIT :limit
"""
resolve_wait = """
UPDATE waits SET outcome = :outcome, event = :event, resolved_at = :now
WHERE run_id = :run_id AND step_id = :step_id AND outcome IS NULL
"""
wake_step = """
UPDATE steps SET state = 'ready', available_at = :now
WHERE run_id = :run_id AND step_id = :step_id AND state = 'waiting'
"""
# A step dispatching its intents is left to finish (what went out stays out); any other
# open step is skipped, its lease revoked, so a worker executing it has its late write
# refused (no gate opens for a stopped run).
skippable_steps = """
SELECT id, step_id, state FROM steps
WHERE run_id = :run_id
  AND state NOT IN ('done', 'skipped', 'failed', 'cancelled', 'compensated', 'persisting')
ORDER BY position
"""
skip_steps = """
UPDATE steps
SET state = 'skipped', finished_at = :now, lease_owner = NULL, lease_expires = NULL,
    lease_token = lease_token + 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND state <> 'persisting'
"""
bus_since = """
SELECT id, topic, payload, run_id FROM bus
WHERE created_at >= :since
  AND EXISTS (SELECT 1 FROM json_each(:patterns) p WHERE bus.topic LIKE p.value ESCAPE '\\')
ORDER BY id LIMIT :limit
"""
lock_waits = "SELECT 1 AS locked"
clock_offset = "SELECT offset_seconds FROM clock WHERE id = 1"
set_clock_offset = """
INSERT INTO clock (id, offset_seconds) VALUES (1, :offset)
ON CONFLICT (id) DO UPDATE SET offset_seconds = excluded.offset_seconds
"""
