"""The storage contract of the operator measures (``soloist.orchestration.measures``).

Reached as ``tx.measures``: a few aggregate reads over the tables the engine already keeps
(runs, the episodic log, the cost ledger, the registry, steps), each computed by the
database so that a page of figures never loads every event. Every read of a window takes
``since`` (epoch seconds) and an optional ``playbook``; the window holds the runs *created*
since then, and what is counted of them (their events, their costs).

Rows are plain dicts of named columns; the measures module turns them into figures.
"""

from __future__ import annotations

from typing import Any, Protocol

Rows = list[dict[str, Any]]

#: The upper bounds (seconds) of the step duration histogram's buckets.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)


class Measures(Protocol):
    def runs(self, since: float, playbook: str | None = None) -> Rows:
        """``playbook, state, n``: the window's runs counted by playbook and state."""
        ...
    def costs(self, since: float, playbook: str | None = None) -> Rows:
        """``playbook, calls, input_tokens, output_tokens, cached, cost_usd``: the cost
        ledger of the window's runs, by playbook."""
        ...
    def interventions(self, since: float, playbook: str | None = None) -> Rows:
        """``playbook, what, n``: decisions at gates (``what`` is the decision) and
        cancels (``cancelled``) made by people or API tokens on the window's runs."""
        ...
    def recoveries(self, since: float, playbook: str | None = None) -> Rows:
        """``run_id, playbook, failed_at, recovered_at``: one row per run of the window
        that failed at least once (``recovered_at`` None while it has not moved on)."""
        ...
    def changes(self, since: float, playbook: str | None = None) -> Rows:
        """``kind, name, version, deployed_at, deployed_by, first_done_at, pinned_by``:
        each definition deployed since, and each memory document version deployed since
        that playbooks name (``pinned_by``: their names, comma-separated; None for a
        definition), and when the first run on it completed (or None)."""
        ...
    def daily(self, since: float, playbook: str | None = None) -> Rows:
        """``day, runs, done, failed, cancelled, cost_usd, interventions``, one row per UTC
        day (``day``: whole days since the epoch) that has runs created in the window."""
        ...
    def steps_by_state(self) -> Rows:
        """``state, n`` for steps ready, and for steps held by a worker's lease."""
        ...
    def step_durations(self) -> dict[str, Any]:
        """Finished steps (from their first claim to their finish): ``count``, ``sum`` and
        ``le_<i>``, how many took at most ``DURATION_BUCKETS[i]`` seconds."""
        ...
