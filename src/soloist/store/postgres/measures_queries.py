"""The operator measures' statements for PostgreSQL (``soloist.store.measures``): a section of
``queries``, kept in a module of its own; ``queries`` makes them its names too."""

from soloist.store.measures import DURATION_BUCKETS

# -- operator measures (soloist.store.measures) ------------------------------------------
# A window is the runs created since %(since)s (of %(playbook)s, if given), and what is
# counted of them. The terms that match a partial index of 0050_measures are written as it is.
_WINDOW = ("r.created_at >= %(since)s "
           "AND (%(playbook)s::text IS NULL OR r.playbook = %(playbook)s)")
_BY_PEOPLE = f"""
FROM events e JOIN runs r ON r.id = e.run_id
WHERE e.kind IN ('approval.decided', 'run.cancelled', 'run.compensating')
  AND e.ts >= %(since)s AND {_WINDOW}
  AND (e.actor LIKE 'person:%%' OR e.actor LIKE 'token:%%')
  AND (e.kind <> 'run.compensating' OR (e.data::jsonb ->> 'then') = 'cancelled')
"""
measure_runs = f"""
SELECT r.playbook, r.state, count(*) AS n FROM runs r WHERE {_WINDOW}
GROUP BY r.playbook, r.state ORDER BY r.playbook, r.state
"""
measure_costs = f"""
SELECT r.playbook, count(*) AS calls, sum(c.input_tokens) AS input_tokens,
       sum(c.output_tokens) AS output_tokens, sum(c.cached) AS cached,
       sum(c.cost_usd) AS cost_usd
FROM llm_calls c JOIN runs r ON r.id = c.run_id WHERE {_WINDOW}
GROUP BY r.playbook ORDER BY r.playbook
"""
measure_interventions = f"""
SELECT r.playbook, CASE WHEN e.kind = 'approval.decided'
                        THEN (e.data::jsonb ->> 'decision') ELSE 'cancelled' END AS what,
       count(*) AS n
{_BY_PEOPLE}
GROUP BY r.playbook, what ORDER BY r.playbook, what
"""
measure_recoveries = f"""
WITH first AS (
    SELECT DISTINCT ON (e.run_id) e.run_id, e.seq, e.ts, e.step_id FROM events e
    WHERE e.kind = 'step.transition'
      AND ((e.data::jsonb ->> 'error') IS NOT NULL OR (e.data::jsonb ->> 'reason') IS NOT NULL)
      AND e.ts >= %(since)s
      AND (((e.data::jsonb ->> 'error') IS NOT NULL
            AND (e.data::jsonb ->> 'from') <> 'awaiting_approval')
           OR (e.data::jsonb ->> 'reason') LIKE 'lease of %% expired'
           OR (e.data::jsonb ->> 'reason') = 'unconfirmed')
    ORDER BY e.run_id, e.seq
)
SELECT r.id AS run_id, r.playbook, f.ts AS failed_at,
       (SELECT min(x.ts) FROM events x
        WHERE x.run_id = f.run_id AND x.seq > f.seq
          AND (x.kind = 'approval.decided'
               OR (x.kind = 'step.transition'
                   AND ((x.data::jsonb ->> 'to') = 'compensated'
                        OR ((x.data::jsonb ->> 'to') = 'done'
                            AND x.step_id = f.step_id))))) AS recovered_at
FROM first f JOIN runs r ON r.id = f.run_id
WHERE {_WINDOW}
ORDER BY f.seq
"""
measure_changes = """
SELECT d.kind, d.name, d.version, d.deployed_at, d.deployed_by,
       CASE d.kind
       WHEN 'playbook' THEN (
           SELECT min(r.finished_at) FROM runs r
           WHERE r.state = 'done' AND r.playbook = d.name AND r.playbook_version = d.version)
       WHEN 'agent' THEN (
           SELECT min(r.finished_at) FROM runs r
           WHERE r.state = 'done' AND r.created_at >= d.deployed_at
             AND (r.pins::jsonb -> 'agents' ->> d.name) = d.version::text)
       ELSE (
           SELECT min(r.finished_at) FROM runs r
           WHERE r.state = 'done' AND r.created_at >= d.deployed_at)
       END AS first_done_at, NULL::text AS pinned_by
FROM definitions d
WHERE d.deployed_at >= %(since)s
  AND (%(playbook)s::text IS NULL OR (d.kind = 'playbook' AND d.name = %(playbook)s))
UNION ALL
SELECT * FROM (
    SELECT 'memory'::text AS kind, m.namespace || '/' || m.doc_key AS name, m.version,
           m.created_at AS deployed_at, m.actor AS deployed_by, (
               SELECT min(r.finished_at) FROM runs r
               WHERE r.state = 'done' AND r.created_at >= m.created_at
                 AND (r.pins::jsonb -> 'documents' ->> (m.namespace || '/' || m.doc_key))
                     = m.version::text) AS first_done_at, (
               SELECT string_agg(DISTINCT p.name, ',')
               FROM definitions p,
                    jsonb_array_elements_text(coalesce(p.body::jsonb -> 'memory', '[]')) n
               WHERE p.kind = 'playbook' AND n = m.namespace || '/' || m.doc_key
           ) AS pinned_by
    FROM documents m
    WHERE m.created_at >= %(since)s AND m.reason LIKE 'deployed from memory/%%') c
WHERE c.pinned_by IS NOT NULL
  AND (%(playbook)s::text IS NULL
       OR position(',' || %(playbook)s || ',' in ',' || c.pinned_by || ',') > 0)
ORDER BY 4, 1, 2, 3
"""
_DAY = "floor(r.created_at / 86400)::bigint"
measure_daily_runs = f"""
SELECT {_DAY} AS day, r.state, count(*) AS n FROM runs r WHERE {_WINDOW}
GROUP BY day, r.state
"""
measure_daily_costs = f"""
SELECT {_DAY} AS day, sum(c.cost_usd) AS cost_usd
FROM llm_calls c JOIN runs r ON r.id = c.run_id WHERE {_WINDOW} GROUP BY day
"""
measure_daily_interventions = f"""
SELECT {_DAY} AS day, count(*) AS n
{_BY_PEOPLE}
GROUP BY day
"""
measure_steps_by_state = """
SELECT state, count(*) AS n FROM steps WHERE state = 'ready' GROUP BY state
UNION ALL
SELECT state, count(*) AS n FROM steps WHERE lease_owner IS NOT NULL AND state <> 'ready'
GROUP BY state
"""
_TOOK = "(finished_at - started_at)"
# One bucket per step (the first bound it is under), counted by bucket: most steps are
# short, so most rows stop at the first test. SqlMeasures makes them cumulative.
measure_step_durations = f"""
SELECT CASE {" ".join(f"WHEN {_TOOK} <= %(b{i})s THEN {i}"
                      for i in range(len(DURATION_BUCKETS)))}
       ELSE {len(DURATION_BUCKETS)} END AS bucket,
       count(*) AS n, sum({_TOOK}) AS total
FROM steps
WHERE state IN ('done', 'failed', 'compensated') AND started_at IS NOT NULL
  AND finished_at IS NOT NULL
GROUP BY bucket
"""
