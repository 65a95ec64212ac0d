"""PostgreSQL statements of wait steps and the workspace's clock (``soloist.store.waits``)."""

begin_wait = """
INSERT INTO waits (run_id, step_id, topic, expression, scope, deadline, created_at)
VALUES (%(run_id)s, %(step_id)s, %(topic)s, %(expression)s, %(scope)s, %(deadline)s,
        %(created_at)s)
ON CONFLICT (run_id, step_id) DO NOTHING
"""
get_wait = "SELECT * FROM waits WHERE run_id = %(run_id)s AND step_id = %(step_id)s"
open_waits = """
SELECT w.* FROM waits w JOIN steps s ON s.run_id = w.run_id AND s.step_id = w.step_id
WHERE w.outcome IS NULL AND s.state = 'waiting'
ORDER BY w.created_at LIMIT %(limit)s
"""
due_waits = """
SELECT w.* FROM waits w JOIN steps s ON s.run_id = w.run_id AND s.step_id = w.step_id
WHERE w.outcome IS NULL AND w.deadline IS NOT NULL AND w.deadline <= %(now)s
  AND s.state = 'waiting'
ORDER BY w.deadline LIMIT %(limit)s
"""
resolve_wait = """
UPDATE waits SET outcome = %(outcome)s, event = %(event)s, resolved_at = %(now)s
WHERE run_id = %(run_id)s AND step_id = %(step_id)s AND outcome IS NULL
"""
wake_step = """
UPDATE steps SET state = 'ready', available_at = %(now)s
WHERE run_id = %(run_id)s AND step_id = %(step_id)s AND state = 'waiting'
"""
# A step dispatching its intents is left to finish (what went out stays out); any other
# open step is skipped, its lease revoked, so a worker executing it has its late write
# refused (no gate opens for a stopped run). Locked, so a claim cannot take one
# between this read and the update.
skippable_steps = """
SELECT id, step_id, state FROM steps
WHERE run_id = %(run_id)s
  AND state NOT IN ('done', 'skipped', 'failed', 'cancelled', 'compensated', 'persisting')
ORDER BY position
FOR UPDATE
"""
skip_steps = """
UPDATE steps
SET state = 'skipped', finished_at = %(now)s, lease_owner = NULL, lease_expires = NULL,
    lease_token = lease_token + 1
WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint))
  AND state <> 'persisting'
"""
bus_since = """
SELECT id, topic, payload, run_id FROM bus
WHERE created_at >= %(since)s
  AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(%(patterns)s::jsonb) p(value)
              WHERE bus.topic LIKE p.value)
ORDER BY id LIMIT %(limit)s
"""
# A key of its own beside queries.CLAIMS_LOCK_KEY and the others: 0x736F6C6F6973_70.
lock_waits = "SELECT 1 AS locked FROM pg_advisory_xact_lock(32492133838058352)"
clock_offset = "SELECT offset_seconds FROM clock WHERE id = 1"
set_clock_offset = """
INSERT INTO clock (id, offset_seconds) VALUES (1, %(offset)s)
ON CONFLICT (id) DO UPDATE SET offset_seconds = excluded.offset_seconds
"""
