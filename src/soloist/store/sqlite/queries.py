"""Every SQL statement of the SQLite backend, under the names the PostgreSQL one uses.

Lists travel as JSON arrays (``json_each``) so each statement has a fixed text and is
prepared once.
"""

from __future__ import annotations

import re

insert_run = """
INSERT INTO runs (id, playbook, playbook_version, state, inputs, queue, priority, created_at,
                  deadline_at, trigger, steps_remaining, created_by, pins)
VALUES (:id, :playbook, :playbook_version, :state, :inputs, :queue, :priority, :created_at,
        :deadline_at, :trigger, :steps_remaining, :created_by, :pins)
"""
get_run = "SELECT * FROM runs WHERE id = :id"
runs_by_ids = "SELECT * FROM runs WHERE id IN (SELECT value FROM json_each(:ids))"
list_runs = """
SELECT * FROM runs
WHERE (:state IS NULL OR state = :state) AND (:playbook IS NULL OR playbook = :playbook)
ORDER BY created_at DESC, id DESC LIMIT :limit
"""
# The runs a list shows, newest first, a page at a time: a page ends at the (created_at, id)
# of the last run of the one before (``before_at``/``before_id``); every filter is optional.
_RUNS_MATCHING = """
WHERE (:state IS NULL OR state = :state) AND (:playbook IS NULL OR playbook = :playbook)
  AND (:version IS NULL OR playbook_version = :version)
  AND (:since IS NULL OR created_at >= :since) AND (:until IS NULL OR created_at < :until)
  AND (:text IS NULL OR inputs LIKE :text ESCAPE '\\' OR error LIKE :text ESCAPE '\\')
"""
page_runs = f"""
SELECT * FROM runs {_RUNS_MATCHING}
  AND (:before_at IS NULL OR created_at < :before_at
       OR (created_at = :before_at AND id < :before_id))
ORDER BY created_at DESC, id DESC LIMIT :limit
"""
count_runs = f"SELECT count(*) AS n FROM runs {_RUNS_MATCHING}"
set_run_state = """
UPDATE runs SET state = :state, error = COALESCE(:error, error),
                finished_at = COALESCE(:finished_at, finished_at),
                final_state = COALESCE(:final_state, final_state)
WHERE id = :id AND state IN (SELECT value FROM json_each(:expect))
"""
decrement_many = """
UPDATE runs SET steps_remaining = steps_remaining - d.n
FROM (SELECT value AS id, count(*) AS n FROM json_each(:ids) GROUP BY value) AS d
WHERE runs.id = d.id
RETURNING id, steps_remaining
"""
decrement_remaining = """
UPDATE runs SET steps_remaining = steps_remaining - :n WHERE id = :id
RETURNING steps_remaining
"""
count_runs_by_state = "SELECT state, count(*) AS n FROM runs GROUP BY state"
reopen_run = """
UPDATE runs SET state = 'running', error = NULL, finished_at = NULL
WHERE id = :id AND state = 'failed' AND final_state IS NULL
"""
runs_past_deadline = """
SELECT * FROM runs WHERE state = 'running' AND deadline_at IS NOT NULL AND deadline_at < :now
ORDER BY deadline_at LIMIT :limit
"""

insert_step = """
INSERT INTO steps (run_id, step_id, position, kind, playbook, playbook_version, queue,
                   priority, state, pending_needs, available_at, created_at)
VALUES (:run_id, :step_id, :position, :kind, :playbook, :playbook_version, :queue,
        :priority, :state, :pending_needs, :available_at, :created_at)
"""
# Inside BEGIN IMMEDIATE no other writer can interleave, so select-then-update is a claim.
claim_steps = """
UPDATE steps
SET state = CASE WHEN resume = 'dispatch' THEN 'persisting' ELSE 'executing' END,
    lease_owner = :owner, lease_expires = :expires,
    lease_token = lease_token + 1, started_at = COALESCE(started_at, :now)
WHERE id IN (
    SELECT id FROM steps
    WHERE state = 'ready' AND available_at <= :now
      AND playbook NOT IN (SELECT value FROM json_each(:exclude_playbooks))
      AND queue NOT IN (SELECT value FROM json_each(:exclude_queues))
    ORDER BY priority DESC, available_at, id
    LIMIT :limit
)
RETURNING *
"""
# BEGIN IMMEDIATE already made this transaction the only writer.
lock_claims = "SELECT 1 AS locked"
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
SET state = :state,
    output = COALESCE(:output, output),
    error = :error,
    attempt = COALESCE(:attempt, attempt),
    available_at = COALESCE(:available_at, available_at),
    resume = COALESCE(:resume, resume),
    finished_at = COALESCE(:finished_at, finished_at),
    lease_owner = CASE WHEN :keep_lease THEN lease_owner ELSE NULL END,
    lease_expires = CASE WHEN :keep_lease THEN lease_expires ELSE NULL END
WHERE id = :id AND lease_token = :token AND lease_owner IS NOT NULL
"""
heartbeat_steps = """
UPDATE steps SET lease_expires = :expires
WHERE lease_owner = :owner AND id IN (SELECT value FROM json_each(:ids))
"""
expired_leases = """
SELECT * FROM steps
WHERE lease_owner IS NOT NULL AND lease_expires < :now
ORDER BY lease_expires LIMIT :limit
"""
release_expired = """
UPDATE steps
SET state = 'ready', attempt = attempt + 1, available_at = :now, resume = :resume,
    lease_owner = NULL, lease_expires = NULL
WHERE id = :id AND lease_token = :token AND lease_owner IS NOT NULL
"""
promote_steps = """
UPDATE steps
SET pending_needs = pending_needs - 1,
    state = CASE WHEN pending_needs = 1 AND state = 'scheduled' THEN 'ready' ELSE state END,
    available_at = CASE WHEN pending_needs = 1 THEN :now ELSE available_at END
WHERE run_id = :run_id AND step_id IN (SELECT value FROM json_each(:step_ids))
RETURNING step_id, state
"""
# A batch of finishes in one turn: fenced first (the tokens still held), then written.
lease_tokens = """
SELECT id, lease_token FROM steps
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner IS NOT NULL
"""
promote_many = """
UPDATE steps
SET pending_needs = pending_needs - d.n,
    state = CASE WHEN pending_needs = d.n AND state = 'scheduled' THEN 'ready' ELSE state END,
    available_at = CASE WHEN pending_needs = d.n THEN :now ELSE available_at END
FROM (SELECT json_extract(value, '$[0]') AS run_id, json_extract(value, '$[1]') AS step_id,
             count(*) AS n
      FROM json_each(:pairs) GROUP BY 1, 2) AS d
WHERE steps.run_id = d.run_id AND steps.step_id = d.step_id
RETURNING run_id, step_id, state
"""
steps_for_run = "SELECT * FROM steps WHERE run_id = :run_id ORDER BY position, id"
get_step = "SELECT * FROM steps WHERE run_id = :run_id AND step_id = :step_id"
step_outputs = """
SELECT run_id, step_id, output FROM steps
WHERE run_id IN (SELECT value FROM json_each(:run_ids)) AND state = 'done'
"""
set_step_state = """
UPDATE steps
SET state = :state, resume = COALESCE(:resume, resume), attempt = COALESCE(:attempt, attempt),
    available_at = COALESCE(:available_at, available_at), error = COALESCE(:error, error),
    guidance = COALESCE(:guidance, guidance), finished_at = COALESCE(:finished_at, finished_at)
WHERE id = :id AND state IN (SELECT value FROM json_each(:expect))
"""
# A failed run retried: its failed and cancelled steps go again, as new.
reopen_step = """
UPDATE steps
SET state = :state, attempt = 1, available_at = :now, error = NULL, guidance = NULL,
    started_at = NULL, finished_at = NULL
WHERE id = :id AND state IN ('failed', 'cancelled')
"""
# Revoking the leases too: a worker still holding one has its late write refused.
cancel_open_steps = """
UPDATE steps
SET state = 'cancelled', finished_at = :now, lease_owner = NULL, lease_expires = NULL,
    lease_token = lease_token + 1
WHERE run_id = :run_id
  AND state NOT IN ('done', 'skipped', 'failed', 'cancelled', 'compensated')
"""
open_steps_for_run = """
SELECT step_id, state FROM steps
WHERE run_id = :run_id
  AND state NOT IN ('done', 'skipped', 'failed', 'cancelled', 'compensated')
ORDER BY position
"""
next_available = "SELECT min(available_at) AS t FROM steps WHERE state = 'ready'"

# A step staged again (sent back with guidance, or its run retried) replaces its intents
# that never acted (staged, pending, discarded, failed, rejected); one that went out, or is
# going, stays as it is.
insert_intent = """
INSERT INTO intents (run_id, step_id, idx, idempotency_key, tool, args, description, status,
                     created_at)
VALUES (:run_id, :step_id, :idx, :idempotency_key, :tool, :args, :description, :status,
        :created_at)
ON CONFLICT (run_id, step_id, idx) DO UPDATE
SET tool = excluded.tool, args = excluded.args, description = excluded.description,
    status = excluded.status
WHERE intents.status IN ('staged', 'pending', 'discarded', 'failed', 'rejected')
"""
intents_for_step = """
SELECT * FROM intents WHERE run_id = :run_id AND step_id = :step_id ORDER BY idx
"""
intents_for_run = "SELECT * FROM intents WHERE run_id = :run_id ORDER BY created_at, step_id, idx"
set_intent_status = """
UPDATE intents SET status = :status
WHERE run_id = :run_id AND step_id = :step_id
  AND status IN (SELECT value FROM json_each(:expect))
"""
intent_by_key = "SELECT * FROM intents WHERE idempotency_key = :key"
set_intent_args = """
UPDATE intents SET args = :args
WHERE run_id = :run_id AND step_id = :step_id AND idx = :idx AND status = 'staged'
"""
mark_intent = """
UPDATE intents SET status = :status, dispatched_at = :now
WHERE idempotency_key = :key AND status IN (SELECT value FROM json_each(:expect))
"""
record_intent_result = """
UPDATE intents SET status = :status, result = :result, error = :error, dispatched_at = :now,
                   undo = :undo
WHERE idempotency_key = :key
"""

insert_approval = """
INSERT INTO approvals (id, run_id, step_id, attempt, reason, message, created_at, expires_at,
                       default_decision)
VALUES (:id, :run_id, :step_id, :attempt, :reason, :message, :created_at, :expires_at,
        :default_decision)
"""
get_approval = "SELECT * FROM approvals WHERE id = :id"
open_approvals = """
SELECT * FROM approvals WHERE decision IS NULL ORDER BY created_at LIMIT :limit
"""
approvals_for_run = "SELECT * FROM approvals WHERE run_id = :run_id ORDER BY created_at"
decide_approval = """
UPDATE approvals SET decision = :decision, decided_by = :by, note = :note, decided_at = :now
WHERE id = :id AND decision IS NULL
"""
expired_approvals = """
SELECT * FROM approvals
WHERE decision IS NULL AND expires_at IS NOT NULL AND expires_at < :now
ORDER BY expires_at
"""
approvals_decided_by_people = """
SELECT count(*) AS n FROM approvals
WHERE decided_at >= :since AND decided_by LIKE 'person:%' AND decision <> 'cancelled'
"""
close_run_approvals = """
UPDATE approvals SET decision = :decision, decided_by = :by, decided_at = :now
WHERE run_id = :run_id AND decision IS NULL
"""

# The BEGIN IMMEDIATE of every write already serialises writers: no row lock needed.
lock_chain_head = "SELECT seq, hash FROM chain_head WHERE id = 1"
set_chain_head = "UPDATE chain_head SET seq = :seq, hash = :hash WHERE id = 1"
chain_head = "SELECT seq, hash FROM chain_head WHERE id = 1"
insert_event = """
INSERT INTO events (seq, ts, kind, run_id, step_id, actor, data, prev_hash, hash)
VALUES (:seq, :ts, :kind, :run_id, :step_id, :actor, :data, :prev_hash, :hash)
"""
list_events = """
SELECT * FROM events
WHERE (:run_id IS NULL OR run_id = :run_id) AND seq > :after
ORDER BY seq LIMIT :limit
"""
scan_events = "SELECT * FROM events WHERE seq > :after ORDER BY seq LIMIT :limit"

events_of_kind = """
SELECT * FROM events
WHERE kind = :kind AND (:before IS NULL OR seq < :before)
ORDER BY seq DESC LIMIT :limit
"""

latest_definition = """
SELECT * FROM definitions WHERE kind = :kind AND name = :name ORDER BY version DESC LIMIT 1
"""
get_definition = """
SELECT * FROM definitions WHERE kind = :kind AND name = :name AND version = :version
"""
insert_definition = """
INSERT INTO definitions (kind, name, version, digest, body, source, deployed_by, deployed_at,
                         note)
VALUES (:kind, :name, :version, :digest, :body, :source, :deployed_by, :deployed_at, :note)
"""
definition_history = """
SELECT * FROM definitions WHERE kind = :kind AND name = :name ORDER BY version
"""
all_latest = """
SELECT d.* FROM definitions d
JOIN (SELECT kind, name, max(version) AS version FROM definitions GROUP BY kind, name) m
  ON m.kind = d.kind AND m.name = d.name AND m.version = d.version
WHERE :kind IS NULL OR d.kind = :kind
ORDER BY d.kind, d.name
"""

publish = """
INSERT INTO bus (topic, payload, run_id, created_at) VALUES (:topic, :payload, :run_id, :now)
"""
pending_bus = "SELECT * FROM bus WHERE processed_at IS NULL ORDER BY id LIMIT :limit"
mark_bus_processed = """
UPDATE bus SET processed_at = :now WHERE id IN (SELECT value FROM json_each(:ids))
"""

try_lead = """
INSERT INTO leadership (name, owner, expires_at) VALUES (:name, :owner, :expires)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leadership.owner = excluded.owner OR leadership.expires_at < :now
RETURNING owner
"""
resign = "DELETE FROM leadership WHERE name = :name AND owner = :owner"
cron_last = """
SELECT last_fire FROM cron_state WHERE playbook = :playbook AND trigger_index = :idx
"""
cron_set = """
INSERT INTO cron_state (playbook, trigger_index, last_fire) VALUES (:playbook, :idx, :t)
ON CONFLICT (playbook, trigger_index) DO UPDATE SET last_fire = excluded.last_fire
"""
worker_seen = """
INSERT INTO kept.processes (id, info, heartbeat_at, started_at, version)
VALUES (:id, :info, :now, :started_at, :version)
ON CONFLICT (id) DO UPDATE SET info = excluded.info, heartbeat_at = excluded.heartbeat_at,
    started_at = COALESCE(excluded.started_at, processes.started_at),
    version = COALESCE(excluded.version, processes.version)
"""
list_workers = "SELECT * FROM kept.processes WHERE heartbeat_at >= :since ORDER BY id"
worker_gone = "DELETE FROM kept.processes WHERE id = :id"
request_drain = """
UPDATE kept.processes SET drain_requested_at = COALESCE(drain_requested_at, :now)
WHERE id = :id
"""
drain_requested = "SELECT drain_requested_at FROM kept.processes WHERE id = :id"

# -- what a restore never rewinds (the attached database ``kept``) and what it forgets ------
ledger_record = """
INSERT INTO kept.dispatch_ledger (idempotency_key, run_id, step_id, tool, status, result, error,
                                  recorded_at)
SELECT :key, i.run_id, i.step_id, i.tool, :status, :result, :error, :now
FROM (SELECT 1) LEFT JOIN intents i ON i.idempotency_key = :key
WHERE true
ON CONFLICT (idempotency_key) DO UPDATE SET
    status = excluded.status, result = excluded.result, error = excluded.error,
    recorded_at = excluded.recorded_at
WHERE dispatch_ledger.status <> 'dispatched'
"""
ledger_dispatched = """
SELECT * FROM kept.dispatch_ledger
WHERE status = 'dispatched' AND idempotency_key IN (SELECT value FROM json_each(:keys))
"""
ledger_since = """
SELECT * FROM kept.dispatch_ledger WHERE recorded_at > :since
ORDER BY recorded_at, idempotency_key LIMIT :limit
"""
version_mark = "SELECT version FROM kept.version_marks WHERE kind = :kind AND name = :name"
mark_version = """
INSERT INTO kept.version_marks (kind, name, version) VALUES (:kind, :name, :version)
ON CONFLICT (kind, name) DO UPDATE SET version = max(version_marks.version, excluded.version)
"""
runs_created_since = """
SELECT id, playbook, state, created_at, finished_at FROM runs WHERE created_at > :since
ORDER BY created_at, id LIMIT :limit
"""
runs_finished_since = """
SELECT id, playbook, state, created_at, finished_at FROM runs
WHERE finished_at > :since AND created_at <= :since
ORDER BY finished_at, id LIMIT :limit
"""
facts_recorded_since = """
SELECT namespace, subject, key, version, op, actor, run_id, recorded_at FROM facts
WHERE recorded_at > :since ORDER BY id LIMIT :limit
"""
documents_written_since = """
SELECT namespace, doc_key, version, actor, run_id, created_at FROM documents
WHERE created_at > :since ORDER BY id LIMIT :limit
"""
renew_generation = "UPDATE embedding_model SET generation = :generation WHERE id = 1"

put_secret = """
INSERT INTO secrets (name, ciphertext, updated_at, updated_by)
VALUES (:name, :ciphertext, :now, :by)
ON CONFLICT (name) DO UPDATE
SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
    updated_by = excluded.updated_by
"""
get_secret = "SELECT * FROM secrets WHERE name = :name"
list_secrets = "SELECT * FROM secrets ORDER BY name"
delete_secret = "DELETE FROM secrets WHERE name = :name"
secrets_stamp = "SELECT stamp FROM secrets_stamp WHERE id = 1"
set_secrets_stamp = "UPDATE secrets_stamp SET stamp = :stamp WHERE id = 1"

insert_llm_call = """
INSERT INTO llm_calls (run_id, step_id, playbook, provider, model, input_tokens, output_tokens,
                       latency_ms, cost_usd, cached, created_at)
VALUES (:run_id, :step_id, :playbook, :provider, :model, :input_tokens, :output_tokens,
        :latency_ms, :cost_usd, :cached, :created_at)
"""
llm_calls_for_run = "SELECT * FROM llm_calls WHERE run_id = :run_id ORDER BY id"
spent_since = """
SELECT COALESCE(sum(cost_usd), 0) AS usd FROM llm_calls
WHERE created_at >= :since AND (:playbook IS NULL OR playbook = :playbook)
  AND (:run_id IS NULL OR run_id = :run_id)
"""
cost_rollup = """
SELECT playbook, count(*) AS calls, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
       sum(cached) AS cached
FROM llm_calls WHERE created_at >= :since GROUP BY playbook ORDER BY playbook
"""
cache_get = "SELECT response FROM llm_cache WHERE key = :key"
cache_hit = "UPDATE llm_cache SET hits = hits + 1 WHERE key = :key"
cache_put = """
INSERT INTO llm_cache (key, response, created_at) VALUES (:key, :response, :now)
ON CONFLICT (key) DO NOTHING
"""
get_breaker = "SELECT * FROM breakers WHERE name = :name"
put_breaker = """
INSERT INTO breakers (name, state, failures, opened_at, updated_at)
VALUES (:name, :state, :failures, :opened_at, :now)
ON CONFLICT (name) DO UPDATE
SET state = excluded.state, failures = excluded.failures, opened_at = excluded.opened_at,
    updated_at = excluded.updated_at
"""
list_breakers = "SELECT * FROM breakers ORDER BY name"

# Versions are numbered under the writer lock (BEGIN IMMEDIATE) and the unique index.
lock_fact = "SELECT 1 AS locked"
fact_last_version = """
SELECT COALESCE(max(version), 0) AS v FROM facts
WHERE namespace = :namespace AND subject = :subject AND key = :key
"""
insert_fact = """
INSERT INTO facts (namespace, subject, key, version, op, value, actor, reason, run_id, step_id,
                   reverts, valid_from, valid_to, expires_at, recorded_at, sources)
VALUES (:namespace, :subject, :key, :version, :op, :value, :actor, :reason, :run_id, :step_id,
        :reverts, :valid_from, :valid_to, :expires_at, :recorded_at, :sources)
"""
fact_history = """
SELECT * FROM facts WHERE namespace = :namespace AND subject = :subject AND key = :key
ORDER BY version
"""
facts_by_run = "SELECT * FROM facts WHERE run_id = :run_id ORDER BY id"
facts_latest_in = """
SELECT f.* FROM facts f
JOIN (SELECT namespace, subject, key, max(version) AS version FROM facts
      WHERE namespace LIKE :pattern ESCAPE '\\' AND (:subject IS NULL OR subject = :subject)
      GROUP BY namespace, subject, key) m
  ON m.namespace = f.namespace AND m.subject = f.subject AND m.key = f.key
 AND m.version = f.version
ORDER BY f.namespace, f.subject, f.key LIMIT :limit
"""

# The version current at :at of each fact whose words match; validity and expiry are
# checked by the caller (memory.facts.is_current).
fact_search = """
SELECT f.*, -bm25(facts_fts) AS score FROM facts_fts JOIN facts f ON f.id = facts_fts.rowid
WHERE facts_fts MATCH :query AND f.namespace LIKE :pattern ESCAPE '\\'
  AND (:subject IS NULL OR f.subject = :subject)
  AND f.version = (SELECT max(version) FROM facts l WHERE l.namespace = f.namespace
                   AND l.subject = f.subject AND l.key = f.key AND l.recorded_at <= :at)
ORDER BY bm25(facts_fts) LIMIT :k
"""

document_history = """
SELECT * FROM documents WHERE namespace = :namespace AND doc_key = :doc_key ORDER BY version
"""
documents_latest_in = """
SELECT d.* FROM documents d
JOIN (SELECT namespace, doc_key, max(version) AS version FROM documents
      WHERE namespace LIKE :pattern ESCAPE '\\' GROUP BY namespace, doc_key) m
  ON m.namespace = d.namespace AND m.doc_key = d.doc_key AND m.version = d.version
ORDER BY d.namespace, d.doc_key LIMIT :limit
"""
doc_last_version = """
SELECT COALESCE(max(version), 0) AS v FROM documents
WHERE namespace = :namespace AND doc_key = :doc_key
"""
insert_document = """
INSERT INTO documents (namespace, doc_key, version, metadata, text, actor, reason, run_id,
                       step_id, created_at)
VALUES (:namespace, :doc_key, :version, :metadata, :text, :actor, :reason, :run_id, :step_id,
        :created_at)
RETURNING id
"""
retire_chunks = """
UPDATE chunks SET current = 0, retired_by = :document_id
WHERE namespace = :namespace AND doc_key = :doc_key AND current = 1
"""
insert_chunk = """
INSERT INTO chunks (document_id, namespace, doc_key, seq, text, metadata, created_at, model,
                    embedding, thread, position, context_of)
VALUES (:document_id, :namespace, :doc_key, :seq, :text, :metadata, :created_at, :model,
        :embedding, :thread, :position, :context_of)
"""
insert_chunk_returning = insert_chunk.rstrip() + " RETURNING id"
# FTS5's bm25() is lower for better matches; the namespace column does not count in it.
_KEYWORD = """
FROM {table} JOIN chunks c ON c.id = {table}.rowid
WHERE {table} MATCH :query AND c.current = 1 AND c.namespace LIKE :pattern ESCAPE '\\'
  AND (:subject IS NULL OR json_extract(c.metadata, '$.subject') = :subject)
  AND (:since IS NULL OR c.created_at >= :since) AND (:until IS NULL OR c.created_at < :until)
ORDER BY bm25({table}, 1.0, 0.0) LIMIT :k
"""
keyword_chunks = """
SELECT c.id, c.namespace, c.doc_key, c.seq, c.text, c.metadata, c.created_at,
       -bm25(chunks_fts, 1.0, 0.0) AS score""" + _KEYWORD.format(table="chunks_fts")
# Without filters: rank in the FTS5 index alone, then read the rows of the best few (about
# half the time of joining every match; the namespace phrase may match a little more than
# the LIKE, hence the depth, and the caller falls back to keyword_chunks when short).
keyword_top = """
SELECT c.id, c.namespace, c.doc_key, c.seq, c.text, c.metadata, c.created_at, t.score
FROM (SELECT rowid, -bm25(chunks_fts, 1.0, 0.0) AS score FROM chunks_fts
      WHERE chunks_fts MATCH :query ORDER BY bm25(chunks_fts, 1.0, 0.0) LIMIT :depth) AS t
JOIN chunks c ON c.id = t.rowid
WHERE c.current = 1 AND c.namespace LIKE :pattern ESCAPE '\\'
ORDER BY t.score DESC LIMIT :k
"""
# The same over the context chunks, each answered by the chunk it stands for.
keyword_context = """
SELECT c.context_of AS id, -bm25(context_fts, 1.0, 0.0) AS score""" + _KEYWORD.format(
    table="context_fts")
_THREAD = """SELECT id, document_id, doc_key, position, text, metadata, created_at
FROM chunks WHERE namespace = :namespace AND thread = :thread AND current = 1
  AND context_of IS NULL AND thread IS NOT NULL AND seq = 0"""
# A thread's documents from lo to hi, and the `n` before and after (positions may have gaps).
thread_chunks = f"""
SELECT * FROM ({_THREAD} AND position < :lo ORDER BY position DESC LIMIT :n) AS b
UNION ALL {_THREAD} AND position BETWEEN :lo AND :hi
UNION ALL SELECT * FROM ({_THREAD} AND position > :hi ORDER BY position LIMIT :n) AS a
"""
retire_context = """
UPDATE chunks SET current = 0, retired_by = :document_id
WHERE context_of = :chunk_id AND current = 1
"""
vector_chunks = """
SELECT id, namespace, embedding FROM chunks
WHERE id > :after AND current = 1 AND model = :model AND embedding IS NOT NULL
ORDER BY id LIMIT :limit
"""
retired_chunks = """
SELECT id, retired_by FROM chunks WHERE retired_by > :after AND id <= :upto
"""
stale_chunks = """
SELECT id, text FROM chunks
WHERE id > :after AND current = 1 AND context_of IS NULL
  AND (model IS NULL OR model <> :model OR embedding IS NULL)
ORDER BY id LIMIT :limit
"""
set_chunk_vector = "UPDATE chunks SET model = :model, embedding = :embedding WHERE id = :id"
chunk_counts = """
SELECT count(*) AS chunks,
       coalesce(sum(CASE WHEN model = :model AND embedding IS NOT NULL THEN 1 ELSE 0 END), 0)
         AS embedded
FROM chunks WHERE current = 1 AND context_of IS NULL
"""
embedding_model = """
SELECT model, dim, indexed, generation FROM embedding_model WHERE id = 1
"""
bump_generation = "UPDATE embedding_model SET generation = generation + 1 WHERE id = 1"
# A first model starts at a generation above any a restore has given (kept.version_marks),
# so vectors a process held from before the restore are never taken for these.
set_embedding_model = """
INSERT INTO embedding_model (id, model, dim, indexed, set_at, generation)
VALUES (1, :model, :dim, :indexed, :now,
        (SELECT coalesce(max(version), 0) FROM kept.version_marks
         WHERE kind = 'memory' AND name = 'vectors'))
ON CONFLICT (id) DO UPDATE SET model = excluded.model, dim = excluded.dim,
  indexed = excluded.indexed, set_at = excluded.set_at
"""
set_model_indexed = "UPDATE embedding_model SET indexed = :indexed WHERE id = 1"
chunks_by_ids = """
SELECT id, namespace, doc_key, seq, text, metadata, created_at FROM chunks
WHERE id IN (SELECT value FROM json_each(:ids)) AND current = 1
"""
lock_documents = "SELECT 1 AS locked"  # one writer already


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts_query(tokens: list[str], namespace_pattern: str | None = None) -> str:
    """An FTS5 query matching any of the tokens (quoted: no operator can be injected).

    With a LIKE pattern over namespaces, the query also asks the ``namespace`` column for
    the pattern's fixed start (a phrase, or a prefix when a wildcard follows): FTS5 then
    ranks that namespace's matches only. The phrase may match more than the pattern
    (``ns5`` in ``a/ns5``); the LIKE in the SQL keeps the result exact.
    """
    text = " OR ".join(_quote(t) for t in tokens)
    if namespace_pattern is None:
        return text
    fixed = re.match(r"(?:[^%_\\]|\\.)*", namespace_pattern)
    start = re.sub(r"\\(.)", r"\1", fixed.group(0) if fixed else "")
    if not re.search(r"\w", start):
        return f"text : ({text})"
    wildcard = " *" if len(fixed.group(0) if fixed else "") < len(namespace_pattern) else ""
    return f"namespace : {_quote(start)}{wildcard} AND text : ({text})"

# -- connector state (soloist.store.connectors) ----------------------------------------------
# The database's clock in epoch seconds; 'now' is one value throughout a statement.
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
get_cursor = """
SELECT * FROM connector_cursors WHERE connector = :connector AND source = :source
"""
insert_cursor = f"""
INSERT INTO connector_cursors (connector, source, value, version, updated_at)
VALUES (:connector, :source, :value, 1, {_NOW})
ON CONFLICT (connector, source) DO NOTHING
RETURNING *
"""
advance_cursor = f"""
UPDATE connector_cursors SET value = :value, version = version + 1, updated_at = {_NOW}
WHERE connector = :connector AND source = :source AND version = :version
RETURNING *
"""
list_cursors = """
SELECT * FROM connector_cursors WHERE :connector IS NULL OR connector = :connector
ORDER BY connector, source
"""
# BEGIN IMMEDIATE made this the only writer already: just the clock.
lock_connector = f"SELECT {_NOW} AS now"
get_bucket = "SELECT * FROM connector_buckets WHERE name = :name"
put_bucket = """
INSERT INTO connector_buckets (name, tokens, updated_at) VALUES (:name, :tokens, :updated_at)
ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at
"""
list_buckets = "SELECT * FROM connector_buckets ORDER BY name"
slots_of = "SELECT * FROM connector_slots WHERE name = :name ORDER BY holder"
put_slot = """
INSERT INTO connector_slots (name, holder, expires_at) VALUES (:name, :holder, :expires_at)
ON CONFLICT (name, holder) DO UPDATE SET expires_at = excluded.expires_at
"""
drop_slots = """
DELETE FROM connector_slots
WHERE name = :name AND holder IN (SELECT value FROM json_each(:holders))
"""
list_slots = """
SELECT * FROM connector_slots WHERE :name IS NULL OR name = :name ORDER BY name, holder
"""
inbound_by_delivery = """
SELECT id FROM inbound_events WHERE source = :source AND delivery_id = :delivery_id
"""
inbound_backlog = """
SELECT count(*) AS n FROM inbound_events WHERE source = :source AND processed_at IS NULL
"""
inbound_backlogs = """
SELECT source, count(*) AS n FROM inbound_events WHERE processed_at IS NULL
GROUP BY source ORDER BY source
"""
insert_inbound = f"""
INSERT INTO inbound_events (source, delivery_id, payload, received_at)
VALUES (:source, :delivery_id, :payload, {_NOW})
ON CONFLICT (source, delivery_id) DO NOTHING
RETURNING id
"""
take_inbound = """
SELECT * FROM inbound_events WHERE source = :source AND processed_at IS NULL
ORDER BY id LIMIT :limit
"""
mark_inbound_processed = f"""
UPDATE inbound_events SET processed_at = {_NOW}
WHERE id IN (SELECT value FROM json_each(:ids)) AND processed_at IS NULL
"""

# -- access tokens (soloist.store.access) ----------------------------------------------------
insert_token = """
INSERT INTO access_tokens (id, name, kind, scopes, digest, created_at, created_by, expires_at)
VALUES (:id, :name, :kind, :scopes, :digest, :created_at, :created_by, :expires_at)
"""
token_by_digest = "SELECT * FROM access_tokens WHERE digest = :digest"
live_token = """
SELECT * FROM access_tokens WHERE name = :name AND kind = :kind AND revoked_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT 1
"""
list_tokens = """
SELECT * FROM access_tokens WHERE :kind IS NULL OR kind = :kind ORDER BY created_at, id
"""
revoke_token = """
UPDATE access_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL
"""
touch_token = "UPDATE access_tokens SET last_used_at = :now WHERE id = :id"

# -- operator measures: their statements are a module of their own, read as this one's ----
from soloist.store.sqlite.measures_queries import *  # noqa: E402, F403

# -- wait steps and the workspace clock: a module of their own, read as this one's ---------
from soloist.store.sqlite.waits_queries import *  # noqa: E402, F403
