"""Every SQL statement of the PostgreSQL backend, under the names the SQLite one uses.

Placeholders are psycopg's ``%(name)s``, so a literal ``%`` must be written ``%%``. Lists
travel as JSON arrays in text (``jsonb_array_elements_text``), as in SQLite, so each
statement has a fixed text and psycopg prepares it once. A list to match is tested as
``col = ANY(ARRAY(SELECT jsonb_array_elements_text(...)))``, not ``col IN (SELECT ...)``:
the array is built once and the planner keeps the index on ``col``; with ``IN (SELECT ...)``
the generic plan joined the function's guessed 100 rows against a sequential scan
(``step_outputs`` took 5-10 ms a claim, the server's largest cost). The claim's exclusion
lists stay ``NOT IN (SELECT ...)`` (a hashed subplan): measured, ``<> ALL(ARRAY(...))``
there made the claim 6x dearer (1.4 ms against 0.2 ms a call, twice the buffers).
A parameter that may be NULL
and is only tested with ``IS NULL`` gets an explicit cast: PostgreSQL cannot infer its
type otherwise.

Unlike SQLite, where ``BEGIN IMMEDIATE`` makes each write transaction the only writer,
several transactions run at once here: claims skip rows another claim has locked, the
chain head is a row lock taken last, and concurrency limits take an advisory lock.

The statements after ``renew_generation`` are this backend's own (locks, wake-ups,
migrations); the shared repositories never use them.
"""

from __future__ import annotations

# Advisory-lock keys: one bigint namespace per database, shared with any other user of
# advisory locks, so the keys are spelled from "soloist" to stay out of the way.
CLAIMS_LOCK_KEY = 0x736F6C6F6973_01
SCHEDULER_LOCK_KEY = 0x736F6C6F6973_02
MIGRATIONS_LOCK_KEY = 0x736F6C6F6973_03

#: The channel a commit that made steps ready notifies; workers listen on it.
READY_CHANNEL = "soloist_ready"

insert_run = """
INSERT INTO runs (id, playbook, playbook_version, state, inputs, queue, priority, created_at,
                  deadline_at, trigger, steps_remaining, created_by, pins)
VALUES (%(id)s, %(playbook)s, %(playbook_version)s, %(state)s, %(inputs)s, %(queue)s,
        %(priority)s, %(created_at)s, %(deadline_at)s, %(trigger)s, %(steps_remaining)s,
        %(created_by)s, %(pins)s)
"""
get_run = "SELECT * FROM runs WHERE id = %(id)s"
runs_by_ids = """
SELECT * FROM runs WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)))
"""
list_runs = """
SELECT * FROM runs
WHERE (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(playbook)s::text IS NULL OR playbook = %(playbook)s)
ORDER BY created_at DESC, id DESC LIMIT %(limit)s
"""
# The runs a list shows, newest first, a page at a time: a page ends at the (created_at, id)
# of the last run of the one before (``before_at``/``before_id``); every filter is optional.
_RUNS_MATCHING = """
WHERE (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(playbook)s::text IS NULL OR playbook = %(playbook)s)
  AND (%(version)s::integer IS NULL OR playbook_version = %(version)s)
  AND (%(since)s::double precision IS NULL OR created_at >= %(since)s)
  AND (%(until)s::double precision IS NULL OR created_at < %(until)s)
  AND (%(text)s::text IS NULL OR inputs LIKE %(text)s OR error LIKE %(text)s)
"""
page_runs = f"""
SELECT * FROM runs {_RUNS_MATCHING}
  AND (%(before_at)s::double precision IS NULL OR created_at < %(before_at)s
       OR (created_at = %(before_at)s AND id < %(before_id)s))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s
"""
count_runs = f"SELECT count(*) AS n FROM runs {_RUNS_MATCHING}"
set_run_state = """
UPDATE runs SET state = %(state)s, error = COALESCE(%(error)s, error),
                finished_at = COALESCE(%(finished_at)s, finished_at),
                final_state = COALESCE(%(final_state)s, final_state)
WHERE id = %(id)s AND state = ANY(ARRAY(SELECT jsonb_array_elements_text(%(expect)s::jsonb)))
"""
decrement_remaining = """
UPDATE runs SET steps_remaining = steps_remaining - %(n)s WHERE id = %(id)s
RETURNING steps_remaining
"""
count_runs_by_state = "SELECT state, count(*) AS n FROM runs GROUP BY state"
reopen_run = """
UPDATE runs SET state = 'running', error = NULL, finished_at = NULL
WHERE id = %(id)s AND state = 'failed' AND final_state IS NULL
"""
runs_past_deadline = """
SELECT * FROM runs
WHERE state = 'running' AND deadline_at IS NOT NULL AND deadline_at < %(now)s
ORDER BY deadline_at LIMIT %(limit)s
"""

insert_step = """
INSERT INTO steps (run_id, step_id, position, kind, playbook, playbook_version, queue,
                   priority, state, pending_needs, available_at, created_at)
VALUES (%(run_id)s, %(step_id)s, %(position)s, %(kind)s, %(playbook)s, %(playbook_version)s,
        %(queue)s, %(priority)s, %(state)s, %(pending_needs)s, %(available_at)s,
        %(created_at)s)
"""
# Concurrent claims skip the rows another claim has locked instead of waiting for them; the
# row lock re-checks ``state = 'ready'`` against the latest committed version, so a step is
# claimed once. The outer SELECT returns the claimed rows in claim order.
claim_steps = """
WITH claimed AS (
    UPDATE steps
    SET state = CASE WHEN resume = 'dispatch' THEN 'persisting' ELSE 'executing' END,
        lease_owner = %(owner)s, lease_expires = %(expires)s,
        lease_token = lease_token + 1, started_at = COALESCE(started_at, %(now)s)
    WHERE id IN (
        SELECT id FROM steps
        WHERE state = 'ready' AND available_at <= %(now)s
          AND playbook NOT IN (SELECT jsonb_array_elements_text(%(exclude_playbooks)s::jsonb))
          AND queue NOT IN (SELECT jsonb_array_elements_text(%(exclude_queues)s::jsonb))
        ORDER BY priority DESC, available_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING *
)
SELECT * FROM claimed ORDER BY priority DESC, available_at, id
"""
# Held until commit: claims that count leases against limits run one at a time.
lock_claims = f"SELECT 1 AS locked FROM pg_advisory_xact_lock({CLAIMS_LOCK_KEY})"
leased_counts = """
SELECT playbook, queue, count(*) AS n FROM steps
WHERE lease_owner IS NOT NULL GROUP BY playbook, queue
"""
leased_by_owner = """
SELECT lease_owner, count(*) AS n FROM steps
WHERE lease_owner IS NOT NULL GROUP BY lease_owner
"""
update_step_fenced = """
UPDATE steps
SET state = %(state)s,
    output = COALESCE(%(output)s, output),
    error = %(error)s,
    attempt = COALESCE(%(attempt)s, attempt),
    available_at = COALESCE(%(available_at)s, available_at),
    resume = COALESCE(%(resume)s, resume),
    finished_at = COALESCE(%(finished_at)s, finished_at),
    lease_owner = CASE WHEN %(keep_lease)s::int <> 0 THEN lease_owner ELSE NULL END,
    lease_expires = CASE WHEN %(keep_lease)s::int <> 0 THEN lease_expires ELSE NULL END
WHERE id = %(id)s AND lease_token = %(token)s AND lease_owner IS NOT NULL
"""
heartbeat_steps = """
UPDATE steps SET lease_expires = %(expires)s
WHERE lease_owner = %(owner)s
  AND id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint))
"""
expired_leases = """
SELECT * FROM steps
WHERE lease_owner IS NOT NULL AND lease_expires < %(now)s
ORDER BY lease_expires LIMIT %(limit)s
"""
release_expired = """
UPDATE steps
SET state = 'ready', attempt = attempt + 1, available_at = %(now)s, resume = %(resume)s,
    lease_owner = NULL, lease_expires = NULL
WHERE id = %(id)s AND lease_token = %(token)s AND lease_owner IS NOT NULL
"""
# SET expressions see the row as it was; RETURNING sees it as it is now (as in SQLite).
promote_steps = """
UPDATE steps
SET pending_needs = pending_needs - 1,
    state = CASE WHEN pending_needs = 1 AND state = 'scheduled' THEN 'ready' ELSE state END,
    available_at = CASE WHEN pending_needs = 1 THEN %(now)s ELSE available_at END
WHERE run_id = %(run_id)s
  AND step_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(step_ids)s::jsonb)))
RETURNING step_id, state
"""
# A batch of finishes in one turn: fenced first (the tokens still held, rows locked),
# then written.
lease_tokens = """
SELECT id, lease_token FROM steps
WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint))
  AND lease_owner IS NOT NULL
FOR UPDATE
"""
promote_many = """
UPDATE steps
SET pending_needs = steps.pending_needs - d.n,
    state = CASE WHEN steps.pending_needs = d.n AND steps.state = 'scheduled' THEN 'ready'
                 ELSE steps.state END,
    available_at = CASE WHEN steps.pending_needs = d.n THEN %(now)s
                        ELSE steps.available_at END
FROM (SELECT p->>0 AS run_id, p->>1 AS step_id, count(*) AS n
      FROM jsonb_array_elements(%(pairs)s::jsonb) AS p GROUP BY 1, 2) AS d
WHERE steps.run_id = d.run_id AND steps.step_id = d.step_id
RETURNING steps.run_id, steps.step_id, steps.state
"""
decrement_many = """
UPDATE runs SET steps_remaining = runs.steps_remaining - d.n
FROM (SELECT v AS id, count(*) AS n
      FROM jsonb_array_elements_text(%(ids)s::jsonb) AS v GROUP BY v) AS d
WHERE runs.id = d.id
RETURNING runs.id, runs.steps_remaining
"""
steps_for_run = "SELECT * FROM steps WHERE run_id = %(run_id)s ORDER BY position, id"
get_step = "SELECT * FROM steps WHERE run_id = %(run_id)s AND step_id = %(step_id)s"
step_outputs = """
SELECT run_id, step_id, output FROM steps
WHERE run_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(run_ids)s::jsonb))) AND state = 'done'
"""
set_step_state = """
UPDATE steps
SET state = %(state)s, resume = COALESCE(%(resume)s, resume),
    attempt = COALESCE(%(attempt)s, attempt),
    available_at = COALESCE(%(available_at)s, available_at),
    error = COALESCE(%(error)s, error), guidance = COALESCE(%(guidance)s, guidance),
    finished_at = COALESCE(%(finished_at)s, finished_at)
WHERE id = %(id)s AND state = ANY(ARRAY(SELECT jsonb_array_elements_text(%(expect)s::jsonb)))
"""
# A failed run retried: its failed and cancelled steps go again, as new.
reopen_step = """
UPDATE steps
SET state = %(state)s, attempt = 1, available_at = %(now)s, error = NULL, guidance = NULL,
    started_at = NULL, finished_at = NULL
WHERE id = %(id)s AND state IN ('failed', 'cancelled')
"""
# Revoking the leases too: a worker still holding one has its late write refused.
cancel_open_steps = """
UPDATE steps
SET state = 'cancelled', finished_at = %(now)s, lease_owner = NULL, lease_expires = NULL,
    lease_token = lease_token + 1
WHERE run_id = %(run_id)s
  AND state NOT IN ('done', 'skipped', 'failed', 'cancelled', 'compensated')
"""
# Read just before cancel_open_steps: the row locks keep what it reports what gets cancelled.
open_steps_for_run = """
SELECT step_id, state FROM steps
WHERE run_id = %(run_id)s
  AND state NOT IN ('done', 'skipped', 'failed', 'cancelled', 'compensated')
ORDER BY position
FOR UPDATE
"""
next_available = "SELECT min(available_at) AS t FROM steps WHERE state = 'ready'"

# A step staged again (sent back with guidance, or its run retried) replaces its intents
# that never acted (staged, pending, discarded, failed, rejected); one that went out, or is
# going, stays as it is.
insert_intent = """
INSERT INTO intents (run_id, step_id, idx, idempotency_key, tool, args, description, status,
                     created_at)
VALUES (%(run_id)s, %(step_id)s, %(idx)s, %(idempotency_key)s, %(tool)s, %(args)s,
        %(description)s, %(status)s, %(created_at)s)
ON CONFLICT (run_id, step_id, idx) DO UPDATE
SET tool = excluded.tool, args = excluded.args, description = excluded.description,
    status = excluded.status
WHERE intents.status IN ('staged', 'pending', 'discarded', 'failed', 'rejected')
"""
intents_for_step = """
SELECT * FROM intents WHERE run_id = %(run_id)s AND step_id = %(step_id)s ORDER BY idx
"""
intents_for_run = """
SELECT * FROM intents WHERE run_id = %(run_id)s ORDER BY created_at, step_id, idx
"""
set_intent_status = """
UPDATE intents SET status = %(status)s
WHERE run_id = %(run_id)s AND step_id = %(step_id)s
  AND status = ANY(ARRAY(SELECT jsonb_array_elements_text(%(expect)s::jsonb)))
"""
intent_by_key = "SELECT * FROM intents WHERE idempotency_key = %(key)s"
set_intent_args = """
UPDATE intents SET args = %(args)s
WHERE run_id = %(run_id)s AND step_id = %(step_id)s AND idx = %(idx)s AND status = 'staged'
"""
mark_intent = """
UPDATE intents SET status = %(status)s, dispatched_at = %(now)s
WHERE idempotency_key = %(key)s
  AND status = ANY(ARRAY(SELECT jsonb_array_elements_text(%(expect)s::jsonb)))
"""
record_intent_result = """
UPDATE intents
SET status = %(status)s, result = %(result)s, error = %(error)s, dispatched_at = %(now)s,
    undo = %(undo)s
WHERE idempotency_key = %(key)s
"""

insert_approval = """
INSERT INTO approvals (id, run_id, step_id, attempt, reason, message, created_at, expires_at,
                       default_decision)
VALUES (%(id)s, %(run_id)s, %(step_id)s, %(attempt)s, %(reason)s, %(message)s,
        %(created_at)s, %(expires_at)s, %(default_decision)s)
"""
get_approval = "SELECT * FROM approvals WHERE id = %(id)s"
open_approvals = """
SELECT * FROM approvals WHERE decision IS NULL ORDER BY created_at LIMIT %(limit)s
"""
approvals_for_run = "SELECT * FROM approvals WHERE run_id = %(run_id)s ORDER BY created_at"
decide_approval = """
UPDATE approvals
SET decision = %(decision)s, decided_by = %(by)s, note = %(note)s, decided_at = %(now)s
WHERE id = %(id)s AND decision IS NULL
"""
expired_approvals = """
SELECT * FROM approvals
WHERE decision IS NULL AND expires_at IS NOT NULL AND expires_at < %(now)s
ORDER BY expires_at
"""
approvals_decided_by_people = """
SELECT count(*) AS n FROM approvals
WHERE decided_at >= %(since)s AND decided_by LIKE 'person:%%' AND decision <> 'cancelled'
"""
close_run_approvals = """
UPDATE approvals SET decision = %(decision)s, decided_by = %(by)s, decided_at = %(now)s
WHERE run_id = %(run_id)s AND decision IS NULL
"""

# Writers run concurrently here, so the head row is locked until commit: it serialises the
# chain. The events are flushed last in each transaction, so the lock is held briefly.
lock_chain_head = "SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE"
set_chain_head = "UPDATE chain_head SET seq = %(seq)s, hash = %(hash)s WHERE id = 1"
chain_head = "SELECT seq, hash FROM chain_head WHERE id = 1"
insert_event = """
INSERT INTO events (seq, ts, kind, run_id, step_id, actor, data, prev_hash, hash)
VALUES (%(seq)s, %(ts)s, %(kind)s, %(run_id)s, %(step_id)s, %(actor)s, %(data)s,
        %(prev_hash)s, %(hash)s)
"""
list_events = """
SELECT * FROM events
WHERE (%(run_id)s::text IS NULL OR run_id = %(run_id)s) AND seq > %(after)s
ORDER BY seq LIMIT %(limit)s
"""
scan_events = "SELECT * FROM events WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s"

events_of_kind = """
SELECT * FROM events
WHERE kind = %(kind)s AND (%(before)s::bigint IS NULL OR seq < %(before)s)
ORDER BY seq DESC LIMIT %(limit)s
"""

latest_definition = """
SELECT * FROM definitions WHERE kind = %(kind)s AND name = %(name)s
ORDER BY version DESC LIMIT 1
"""
get_definition = """
SELECT * FROM definitions WHERE kind = %(kind)s AND name = %(name)s AND version = %(version)s
"""
insert_definition = """
INSERT INTO definitions (kind, name, version, digest, body, source, deployed_by, deployed_at,
                         note)
VALUES (%(kind)s, %(name)s, %(version)s, %(digest)s, %(body)s, %(source)s, %(deployed_by)s,
        %(deployed_at)s, %(note)s)
"""
definition_history = """
SELECT * FROM definitions WHERE kind = %(kind)s AND name = %(name)s ORDER BY version
"""
all_latest = """
SELECT d.* FROM definitions d
JOIN (SELECT kind, name, max(version) AS version FROM definitions GROUP BY kind, name) m
  ON m.kind = d.kind AND m.name = d.name AND m.version = d.version
WHERE %(kind)s::text IS NULL OR d.kind = %(kind)s
ORDER BY d.kind, d.name
"""

publish = """
INSERT INTO bus (topic, payload, run_id, created_at)
VALUES (%(topic)s, %(payload)s, %(run_id)s, %(now)s)
"""
pending_bus = "SELECT * FROM bus WHERE processed_at IS NULL ORDER BY id LIMIT %(limit)s"
mark_bus_processed = """
UPDATE bus SET processed_at = %(now)s
WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint))
"""

try_lead = """
INSERT INTO leadership (name, owner, expires_at) VALUES (%(name)s, %(owner)s, %(expires)s)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leadership.owner = excluded.owner OR leadership.expires_at < %(now)s
RETURNING owner
"""
resign = "DELETE FROM leadership WHERE name = %(name)s AND owner = %(owner)s"
cron_last = """
SELECT last_fire FROM cron_state WHERE playbook = %(playbook)s AND trigger_index = %(idx)s
"""
cron_set = """
INSERT INTO cron_state (playbook, trigger_index, last_fire) VALUES (%(playbook)s, %(idx)s, %(t)s)
ON CONFLICT (playbook, trigger_index) DO UPDATE SET last_fire = excluded.last_fire
"""
worker_seen = """
INSERT INTO processes (id, info, heartbeat_at, started_at, version)
VALUES (%(id)s, %(info)s, %(now)s, %(started_at)s, %(version)s)
ON CONFLICT (id) DO UPDATE SET info = excluded.info, heartbeat_at = excluded.heartbeat_at,
    started_at = COALESCE(excluded.started_at, processes.started_at),
    version = COALESCE(excluded.version, processes.version)
"""
list_workers = "SELECT * FROM processes WHERE heartbeat_at >= %(since)s ORDER BY id"
worker_gone = "DELETE FROM processes WHERE id = %(id)s"
request_drain = """
UPDATE processes SET drain_requested_at = COALESCE(drain_requested_at, %(now)s)
WHERE id = %(id)s
"""
drain_requested = "SELECT drain_requested_at FROM processes WHERE id = %(id)s"

# -- what a restore never rewinds (left out of every pg_dump) and what it forgets ----------
ledger_record = """
INSERT INTO dispatch_ledger (idempotency_key, run_id, step_id, tool, status, result, error,
                             recorded_at)
SELECT %(key)s, i.run_id, i.step_id, i.tool, %(status)s, %(result)s, %(error)s, %(now)s
FROM (SELECT 1) AS one LEFT JOIN intents i ON i.idempotency_key = %(key)s
ON CONFLICT (idempotency_key) DO UPDATE SET
    status = excluded.status, result = excluded.result, error = excluded.error,
    recorded_at = excluded.recorded_at
WHERE dispatch_ledger.status <> 'dispatched'
"""
ledger_dispatched = """
SELECT * FROM dispatch_ledger
WHERE status = 'dispatched'
  AND idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%(keys)s::jsonb)))
"""
ledger_since = """
SELECT * FROM dispatch_ledger WHERE recorded_at > %(since)s
ORDER BY recorded_at, idempotency_key LIMIT %(limit)s
"""
version_mark = """
SELECT version FROM version_marks WHERE kind = %(kind)s AND name = %(name)s
"""
mark_version = """
INSERT INTO version_marks (kind, name, version) VALUES (%(kind)s, %(name)s, %(version)s)
ON CONFLICT (kind, name) DO UPDATE
SET version = greatest(version_marks.version, excluded.version)
"""
runs_created_since = """
SELECT id, playbook, state, created_at, finished_at FROM runs WHERE created_at > %(since)s
ORDER BY created_at, id LIMIT %(limit)s
"""
runs_finished_since = """
SELECT id, playbook, state, created_at, finished_at FROM runs
WHERE finished_at > %(since)s AND created_at <= %(since)s
ORDER BY finished_at, id LIMIT %(limit)s
"""
facts_recorded_since = """
SELECT namespace, subject, key, version, op, actor, run_id, recorded_at FROM facts
WHERE recorded_at > %(since)s ORDER BY id LIMIT %(limit)s
"""
documents_written_since = """
SELECT namespace, doc_key, version, actor, run_id, created_at FROM documents
WHERE created_at > %(since)s ORDER BY id LIMIT %(limit)s
"""
renew_generation = "UPDATE embedding_model SET generation = %(generation)s WHERE id = 1"

# -- this backend's own statements -----------------------------------------------------

# Sent inside the committing transaction: PostgreSQL delivers it on commit, never on rollback.
# Only when the commit leaves a step ready: a worker that claimed, in the same transaction,
# every step it made ready (the usual case below full load) need wake nobody, and a
# wake-up costs every idle worker a claim and a read (bench/pg_wakeups.py). No wake-up is
# lost: a step this transaction readied is still ready here unless this transaction
# claimed it, for no other can claim it before the commit.
notify_ready = f"""
SELECT pg_notify('{READY_CHANNEL}', '') WHERE EXISTS (SELECT 1 FROM steps WHERE state = 'ready')
"""
# Queued at the end of the commit pipeline (see PostgresStore._commit_pipelined).
commit = "COMMIT"
listen_ready = f"LISTEN {READY_CHANNEL}"
# Session-level: held on a dedicated connection for as long as this process leads.
try_scheduler_lock = f"SELECT pg_try_advisory_lock({SCHEDULER_LOCK_KEY}) AS locked"
release_scheduler_lock = f"SELECT pg_advisory_unlock({SCHEDULER_LOCK_KEY}) AS released"
# The tables of this store's schema (a restore drops them all but the kept ones).
current_tables = """
SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename
"""
# Held until the migrating transaction commits: concurrent processes migrate in turn.
lock_migrations = f"SELECT 1 AS locked FROM pg_advisory_xact_lock({MIGRATIONS_LOCK_KEY})"
create_migrations_table = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer          PRIMARY KEY,
    name       text             NOT NULL,
    applied_at double precision NOT NULL
)
"""
applied_migrations = "SELECT version FROM schema_migrations"
record_migration = """
INSERT INTO schema_migrations (version, name, applied_at) VALUES (%(version)s, %(name)s, %(now)s)
"""

put_secret = """
INSERT INTO secrets (name, ciphertext, updated_at, updated_by)
VALUES (%(name)s, %(ciphertext)s, %(now)s, %(by)s)
ON CONFLICT (name) DO UPDATE
SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
    updated_by = excluded.updated_by
"""
get_secret = "SELECT * FROM secrets WHERE name = %(name)s"
list_secrets = "SELECT * FROM secrets ORDER BY name"
delete_secret = "DELETE FROM secrets WHERE name = %(name)s"
secrets_stamp = "SELECT stamp FROM secrets_stamp WHERE id = 1"
set_secrets_stamp = "UPDATE secrets_stamp SET stamp = %(stamp)s WHERE id = 1"

insert_llm_call = """
INSERT INTO llm_calls (run_id, step_id, playbook, provider, model, input_tokens, output_tokens,
                       latency_ms, cost_usd, cached, created_at)
VALUES (%(run_id)s, %(step_id)s, %(playbook)s, %(provider)s, %(model)s, %(input_tokens)s,
        %(output_tokens)s, %(latency_ms)s, %(cost_usd)s, %(cached)s, %(created_at)s)
"""
llm_calls_for_run = "SELECT * FROM llm_calls WHERE run_id = %(run_id)s ORDER BY id"
spent_since = """
SELECT COALESCE(sum(cost_usd), 0) AS usd FROM llm_calls
WHERE created_at >= %(since)s AND (%(playbook)s::text IS NULL OR playbook = %(playbook)s)
  AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s)
"""
cost_rollup = """
SELECT playbook, count(*) AS calls, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
       sum(cached) AS cached
FROM llm_calls WHERE created_at >= %(since)s GROUP BY playbook ORDER BY playbook
"""
cache_get = "SELECT response FROM llm_cache WHERE key = %(key)s"
cache_hit = "UPDATE llm_cache SET hits = hits + 1 WHERE key = %(key)s"
cache_put = """
INSERT INTO llm_cache (key, response, created_at) VALUES (%(key)s, %(response)s, %(now)s)
ON CONFLICT (key) DO NOTHING
"""
get_breaker = "SELECT * FROM breakers WHERE name = %(name)s"
put_breaker = """
INSERT INTO breakers (name, state, failures, opened_at, updated_at)
VALUES (%(name)s, %(state)s, %(failures)s, %(opened_at)s, %(now)s)
ON CONFLICT (name) DO UPDATE
SET state = excluded.state, failures = excluded.failures, opened_at = excluded.opened_at,
    updated_at = excluded.updated_at
"""
list_breakers = "SELECT * FROM breakers ORDER BY name"

# Versions are numbered under a per-fact advisory lock and the unique index.
lock_fact = """
SELECT pg_advisory_xact_lock(hashtextextended(%(namespace)s || '/' || %(subject)s || '/'
                                              || %(key)s, 0)) AS locked
"""
fact_last_version = """
SELECT COALESCE(max(version), 0) AS v FROM facts
WHERE namespace = %(namespace)s AND subject = %(subject)s AND key = %(key)s
"""
insert_fact = """
INSERT INTO facts (namespace, subject, key, version, op, value, actor, reason, run_id, step_id,
                   reverts, valid_from, valid_to, expires_at, recorded_at, sources)
VALUES (%(namespace)s, %(subject)s, %(key)s, %(version)s, %(op)s, %(value)s, %(actor)s,
        %(reason)s, %(run_id)s, %(step_id)s, %(reverts)s, %(valid_from)s, %(valid_to)s,
        %(expires_at)s, %(recorded_at)s, %(sources)s)
"""
fact_history = """
SELECT * FROM facts WHERE namespace = %(namespace)s AND subject = %(subject)s AND key = %(key)s
ORDER BY version
"""
facts_by_run = "SELECT * FROM facts WHERE run_id = %(run_id)s ORDER BY id"
facts_latest_in = """
SELECT DISTINCT ON (namespace, subject, key) * FROM facts
WHERE namespace LIKE %(pattern)s AND (%(subject)s::text IS NULL OR subject = %(subject)s)
ORDER BY namespace, subject, key, version DESC LIMIT %(limit)s
"""

# The version current at :at of each fact whose words match; validity and expiry are
# checked by the caller (memory.facts.is_current).
fact_search = """
SELECT f.id, f.namespace, f.subject, f.key, f.version, f.op, f.value, f.actor, f.reason,
       f.run_id, f.step_id, f.reverts, f.valid_from, f.valid_to, f.expires_at, f.recorded_at,
       ts_rank_cd(f.tsv, to_tsquery('english', %(query)s)) AS score
FROM facts f
WHERE f.tsv @@ to_tsquery('english', %(query)s) AND f.namespace LIKE %(pattern)s
  AND (%(subject)s::text IS NULL OR f.subject = %(subject)s)
  AND f.version = (SELECT max(version) FROM facts l WHERE l.namespace = f.namespace
                   AND l.subject = f.subject AND l.key = f.key AND l.recorded_at <= %(at)s)
ORDER BY score DESC, f.id LIMIT %(k)s
"""

doc_last_version = """
SELECT COALESCE(max(version), 0) AS v FROM documents
WHERE namespace = %(namespace)s AND doc_key = %(doc_key)s
"""
document_history = """
SELECT * FROM documents WHERE namespace = %(namespace)s AND doc_key = %(doc_key)s
ORDER BY version
"""
documents_latest_in = """
SELECT DISTINCT ON (namespace, doc_key) * FROM documents
WHERE namespace LIKE %(pattern)s
ORDER BY namespace, doc_key, version DESC LIMIT %(limit)s
"""
insert_document = """
INSERT INTO documents (namespace, doc_key, version, metadata, text, actor, reason, run_id,
                       step_id, created_at)
VALUES (%(namespace)s, %(doc_key)s, %(version)s, %(metadata)s, %(text)s, %(actor)s,
        %(reason)s, %(run_id)s, %(step_id)s, %(created_at)s)
RETURNING id
"""
retire_chunks = """
UPDATE chunks SET current = 0, retired_by = %(document_id)s
WHERE namespace = %(namespace)s AND doc_key = %(doc_key)s AND current = 1
"""
insert_chunk = """
INSERT INTO chunks (document_id, namespace, doc_key, seq, text, metadata, created_at, model,
                    embedding, thread, position, context_of)
VALUES (%(document_id)s, %(namespace)s, %(doc_key)s, %(seq)s, %(text)s, %(metadata)s,
        %(created_at)s, %(model)s, %(embedding)s, %(thread)s, %(position)s, %(context_of)s)
"""
insert_chunk_returning = insert_chunk.rstrip() + " RETURNING id"
keyword_chunks = """
SELECT id, namespace, doc_key, seq, text, metadata, created_at,
       ts_rank_cd(tsv, to_tsquery('english', %(query)s)) AS score
FROM chunks
WHERE tsv @@ to_tsquery('english', %(query)s) AND current = 1 AND context_of IS NULL
  AND namespace LIKE %(pattern)s
  AND (%(subject)s::text IS NULL OR (metadata::jsonb ->> 'subject') = %(subject)s)
  AND (%(since)s::float8 IS NULL OR created_at >= %(since)s)
  AND (%(until)s::float8 IS NULL OR created_at < %(until)s)
ORDER BY score DESC, id LIMIT %(k)s
"""
keyword_top = keyword_chunks  # PostgreSQL ranks the namespace's matches only already
# The same over the context chunks, each answered by the chunk it stands for.
keyword_context = """
SELECT context_of AS id, ts_rank_cd(tsv, to_tsquery('english', %(query)s)) AS score
FROM chunks
WHERE tsv @@ to_tsquery('english', %(query)s) AND current = 1 AND context_of IS NOT NULL
  AND namespace LIKE %(pattern)s
  AND (%(subject)s::text IS NULL OR (metadata::jsonb ->> 'subject') = %(subject)s)
  AND (%(since)s::float8 IS NULL OR created_at >= %(since)s)
  AND (%(until)s::float8 IS NULL OR created_at < %(until)s)
ORDER BY score DESC, id LIMIT %(k)s
"""
_THREAD = """SELECT id, document_id, doc_key, position, text, metadata, created_at
FROM chunks WHERE namespace = %(namespace)s AND thread = %(thread)s AND current = 1
  AND context_of IS NULL AND thread IS NOT NULL AND seq = 0"""
# A thread's documents from lo to hi, and the `n` before and after (positions may have gaps).
thread_chunks = f"""
SELECT * FROM ({_THREAD} AND position < %(lo)s ORDER BY position DESC LIMIT %(n)s) AS b
UNION ALL {_THREAD} AND position BETWEEN %(lo)s AND %(hi)s
UNION ALL SELECT * FROM ({_THREAD} AND position > %(hi)s ORDER BY position LIMIT %(n)s) AS a
"""
retire_context = """
UPDATE chunks SET current = 0, retired_by = %(document_id)s
WHERE context_of = %(chunk_id)s AND current = 1
"""
vector_chunks = """
SELECT id, namespace, embedding FROM chunks
WHERE id > %(after)s AND current = 1 AND model = %(model)s AND embedding IS NOT NULL
ORDER BY id LIMIT %(limit)s
"""
retired_chunks = """
SELECT id, retired_by FROM chunks WHERE retired_by > %(after)s AND id <= %(upto)s
"""
stale_chunks = """
SELECT id, text FROM chunks
WHERE id > %(after)s AND current = 1 AND context_of IS NULL
  AND (model IS NULL OR model <> %(model)s OR embedding IS NULL)
ORDER BY id LIMIT %(limit)s
"""
set_chunk_vector = """
UPDATE chunks SET model = %(model)s, embedding = %(embedding)s WHERE id = %(id)s
"""
chunk_counts = """
SELECT count(*) AS chunks,
       coalesce(sum(CASE WHEN model = %(model)s AND embedding IS NOT NULL THEN 1 ELSE 0 END),
                0) AS embedded
FROM chunks WHERE current = 1 AND context_of IS NULL
"""
embedding_model = """
SELECT model, dim, indexed, generation FROM embedding_model WHERE id = 1
"""
bump_generation = "UPDATE embedding_model SET generation = generation + 1 WHERE id = 1"
# A first model starts at a generation above any a restore has given (version_marks), so
# vectors a process held from before the restore are never taken for these.
set_embedding_model = """
INSERT INTO embedding_model (id, model, dim, indexed, set_at, generation)
VALUES (1, %(model)s, %(dim)s, %(indexed)s, %(now)s,
        (SELECT coalesce(max(version), 0) FROM version_marks
         WHERE kind = 'memory' AND name = 'vectors'))
ON CONFLICT (id) DO UPDATE SET model = excluded.model, dim = excluded.dim,
  indexed = excluded.indexed, set_at = excluded.set_at
"""
set_model_indexed = "UPDATE embedding_model SET indexed = %(indexed)s WHERE id = 1"
chunks_by_ids = """
SELECT id, namespace, doc_key, seq, text, metadata, created_at FROM chunks
WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint))
  AND current = 1
"""
# Document writers take turns, so chunk and document ids grow in commit order: a reader
# that keeps vectors in memory tops up by "id > the last it saw" and misses nothing.
lock_documents = "SELECT pg_advisory_xact_lock(hashtextextended('soloist.documents', 0))"


def fts_query(tokens: list[str], namespace_pattern: str | None = None) -> str:
    """A tsquery matching any of the tokens (only word characters reach it). The namespace
    is filtered by its own index (``chunks_namespace``), not in the tsquery."""
    import re

    words = [w for w in (re.sub(r"[^\w]", "", t) for t in tokens) if w]
    return " | ".join(words) or "''"

# -- connector state (soloist.store.connectors) ----------------------------------------------
# The database's clock in epoch seconds: clock_timestamp(), not now(), which is the time the
# transaction began, before it waited for the lock a decision is made under.
_NOW = "extract(epoch FROM clock_timestamp())::float8"
server_clock = f"SELECT {_NOW} AS now"
get_cursor = """
SELECT * FROM connector_cursors WHERE connector = %(connector)s AND source = %(source)s
"""
insert_cursor = f"""
INSERT INTO connector_cursors (connector, source, value, version, updated_at)
VALUES (%(connector)s, %(source)s, %(value)s, 1, {_NOW})
ON CONFLICT (connector, source) DO NOTHING
RETURNING *
"""
advance_cursor = f"""
UPDATE connector_cursors SET value = %(value)s, version = version + 1, updated_at = {_NOW}
WHERE connector = %(connector)s AND source = %(source)s AND version = %(version)s
RETURNING *
"""
list_cursors = """
SELECT * FROM connector_cursors
WHERE %(connector)s::text IS NULL OR connector = %(connector)s
ORDER BY connector, source
"""
# Held until commit: the deciders of one connector's bucket and slots (or of one source's
# backlog) take turns; the key is spelled apart from the facts' locks by its prefix. The
# clock is read once the lock is held. What the lock guards is read by the next statements:
# this one's snapshot was taken before it waited.
lock_connector = f"""
SELECT {_NOW} AS now
FROM pg_advisory_xact_lock(hashtextextended('soloist.connector/' || %(key)s, 0))
"""
get_bucket = "SELECT * FROM connector_buckets WHERE name = %(name)s"
put_bucket = """
INSERT INTO connector_buckets (name, tokens, updated_at)
VALUES (%(name)s, %(tokens)s, %(updated_at)s)
ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at
"""
list_buckets = "SELECT * FROM connector_buckets ORDER BY name"
slots_of = "SELECT * FROM connector_slots WHERE name = %(name)s ORDER BY holder"
put_slot = """
INSERT INTO connector_slots (name, holder, expires_at)
VALUES (%(name)s, %(holder)s, %(expires_at)s)
ON CONFLICT (name, holder) DO UPDATE SET expires_at = excluded.expires_at
"""
drop_slots = """
DELETE FROM connector_slots
WHERE name = %(name)s
  AND holder = ANY(ARRAY(SELECT jsonb_array_elements_text(%(holders)s::jsonb)))
"""
list_slots = """
SELECT * FROM connector_slots WHERE %(name)s::text IS NULL OR name = %(name)s
ORDER BY name, holder
"""
inbound_by_delivery = """
SELECT id FROM inbound_events WHERE source = %(source)s AND delivery_id = %(delivery_id)s
"""
inbound_backlog = """
SELECT count(*) AS n FROM inbound_events WHERE source = %(source)s AND processed_at IS NULL
"""
inbound_backlogs = """
SELECT source, count(*) AS n FROM inbound_events WHERE processed_at IS NULL
GROUP BY source ORDER BY source
"""
insert_inbound = f"""
INSERT INTO inbound_events (source, delivery_id, payload, received_at)
VALUES (%(source)s, %(delivery_id)s, %(payload)s, {_NOW})
ON CONFLICT (source, delivery_id) DO NOTHING
RETURNING id
"""
take_inbound = """
SELECT * FROM inbound_events WHERE source = %(source)s AND processed_at IS NULL
ORDER BY id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
mark_inbound_processed = f"""
UPDATE inbound_events SET processed_at = {_NOW}
WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint))
  AND processed_at IS NULL
"""

# -- access tokens (soloist.store.access) ----------------------------------------------------
insert_token = """
INSERT INTO access_tokens (id, name, kind, scopes, digest, created_at, created_by, expires_at)
VALUES (%(id)s, %(name)s, %(kind)s, %(scopes)s, %(digest)s, %(created_at)s, %(created_by)s,
        %(expires_at)s)
"""
token_by_digest = "SELECT * FROM access_tokens WHERE digest = %(digest)s"
live_token = """
SELECT * FROM access_tokens WHERE name = %(name)s AND kind = %(kind)s AND revoked_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT 1
"""
list_tokens = """
SELECT * FROM access_tokens WHERE %(kind)s::text IS NULL OR kind = %(kind)s
ORDER BY created_at, id
"""
revoke_token = """
UPDATE access_tokens SET revoked_at = %(now)s WHERE id = %(id)s AND revoked_at IS NULL
"""
touch_token = "UPDATE access_tokens SET last_used_at = %(now)s WHERE id = %(id)s"

# -- operator measures: their statements are a module of their own, read as this one's ----
from soloist.store.postgres.measures_queries import *  # noqa: E402, F403

# -- wait steps and the workspace clock: a module of their own, read as this one's ---------
from soloist.store.postgres.waits_queries import *  # noqa: E402, F403
