"""The operator measures' statements for SQLite (``soloist.store.measures``): a section of
``queries``, kept in a module of its own; ``queries`` makes them its names too."""

from soloist.store.measures import DURATION_BUCKETS

# -- operator measures (soloist.store.measures) ------------------------------------------
# A window is the runs created since :since (of :playbook, if given), and what is counted
# of them. The terms that match a partial index of 0050_measures are written as it is.
_WINDOW = "r.created_at >= :since AND (:playbook IS NULL OR r.playbook = :playbook)"
_BY_PEOPLE = f"""
FROM events e JOIN runs r ON r.id = e.run_id
WHERE e.kind IN ('approval.decided', 'run.cancelled', 'run.compensating')
  AND e.ts >= :since AND {_WINDOW}
  AND (e.actor LIKE 'person:%' OR e.actor LIKE 'token:%')
  AND (e.kind <> 'run.compensating' OR json_extract(e.data, '$.then') = 'cancelled')
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
                        THEN json_extract(e.data, '$.decision') ELSE 'cancelled' END AS what,
       count(*) AS n
{_BY_PEOPLE}
GROUP BY r.playbook, what ORDER BY r.playbook, what
"""
measure_recoveries = f"""
WITH first AS (
    SELECT e.run_id, min(e.seq) AS seq FROM events e
    WHERE e.kind = 'step.transition'
      AND (json_extract(e.data, '$.error') IS NOT NULL
           OR json_extract(e.data, '$.reason') IS NOT NULL)
      AND e.ts >= :since
      AND ((json_extract(e.data, '$.error') IS NOT NULL
            AND json_extract(e.data, '$.from') <> 'awaiting_approval')
           OR json_extract(e.data, '$.reason') LIKE 'lease of % expired'
           OR json_extract(e.data, '$.reason') = 'unconfirmed')
    GROUP BY e.run_id
)
SELECT r.id AS run_id, r.playbook, f.ts AS failed_at,
       (SELECT min(x.ts) FROM events x
        WHERE x.run_id = f.run_id AND x.seq > f.seq
          AND (x.kind = 'approval.decided'
               OR (x.kind = 'step.transition'
                   AND (json_extract(x.data, '$.to') = 'compensated'
                        OR (json_extract(x.data, '$.to') = 'done'
                            AND x.step_id = f.step_id))))) AS recovered_at
FROM first JOIN events f ON f.seq = first.seq JOIN runs r ON r.id = first.run_id
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
             AND json_extract(r.pins, '$.agents."' || d.name || '"') = d.version)
       ELSE (
           SELECT min(r.finished_at) FROM runs r
           WHERE r.state = 'done' AND r.created_at >= d.deployed_at)
       END AS first_done_at, NULL AS pinned_by
FROM definitions d
WHERE d.deployed_at >= :since
  AND (:playbook IS NULL OR (d.kind = 'playbook' AND d.name = :playbook))
UNION ALL
SELECT * FROM (
    SELECT 'memory' AS kind, m.namespace || '/' || m.doc_key AS name, m.version,
           m.created_at AS deployed_at, m.actor AS deployed_by, (
               SELECT min(r.finished_at) FROM runs r
               WHERE r.state = 'done' AND r.created_at >= m.created_at
                 AND json_extract(r.pins, '$.documents."' || m.namespace || '/' || m.doc_key
                                  || '"') = m.version) AS first_done_at, (
               SELECT group_concat(DISTINCT p.name)
               FROM definitions p, json_each(p.body, '$.memory') n
               WHERE p.kind = 'playbook' AND n.value = m.namespace || '/' || m.doc_key
           ) AS pinned_by
    FROM documents m
    WHERE m.created_at >= :since AND m.reason LIKE 'deployed from memory/%') c
WHERE c.pinned_by IS NOT NULL
  AND (:playbook IS NULL OR instr(',' || c.pinned_by || ',', ',' || :playbook || ',') > 0)
ORDER BY 4, 1, 2, 3
"""
_DAY = "CAST(r.created_at / 86400 AS INTEGER)"
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
SELECT CASE {" ".join(f"WHEN {_TOOK} <= :b{i} THEN {i}"
                      for i in range(len(DURATION_BUCKETS)))}
       ELSE {len(DURATION_BUCKETS)} END AS bucket,
       count(*) AS n, sum({_TOOK}) AS total
FROM steps
WHERE state IN ('done', 'failed', 'compensated') AND started_at IS NOT NULL
  AND finished_at IS NOT NULL
GROUP BY bucket
"""
