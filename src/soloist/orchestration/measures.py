"""The five operator measures: one computation that the CLI, the API, the dashboard and
``/metrics`` all show, so they never disagree.

A *window* is the runs created since a moment (``since``, epoch seconds), of every playbook
or of one; each measure counts those runs and what happened to them, whenever it happened.

1. **Workflow completion rate**: the window's runs that are ``done`` over those that ended
   (``done``, ``failed`` or ``cancelled``); runs still running or compensating are left
   out. None when no run ended.

2. **Mean time to recovery**: over the window's runs that failed and moved on, the mean of
   the time from the run's *first failure* to the moment it *moved on*.

   The first failure is the run's earliest ``step.transition`` event that is one of:

   * a step moved back to ``ready`` with an ``error``: a failed attempt that is retried,
     or a wait for an open circuit breaker or a rate limit;
   * a step moved back to ``ready`` because its worker's lease expired (a stuck step);
   * a step moved to ``failed`` with an error (a deterministic failure, or retries used up);
   * a step moved to ``awaiting_approval`` with an error (a failed check that asks a
     person, a compensation that could not be done) or because a send's outcome could
     not be proven (``unconfirmed``).

   A person's rejection at a gate (``awaiting_approval`` to ``failed``) is a decision, not
   a failure. The run moved on at the first event after its first failure that is one of:

   * the step that failed first reaches ``done`` (its retry succeeded);
   * a decision at one of the run's gates (``approval.decided``: a person's, or a gate's
     timeout applying its default);
   * one of the run's steps is ``compensated``.

   A run that failed and has not moved on (yet, or ever: it failed with nothing to
   undo) is not a recovery; it is counted apart (``unrecovered``). Only a run's first
   failure counts, so a run recovers at most once. Reported: the mean in seconds (None
   without a recovery) and the number of recoveries.

3. **Human interventions per 100 runs**: decisions at gates (approve, reject, edit then
   approve, retry with guidance, resolve by hand) and cancels of runs made by people
   (actors ``person:*``) or API tokens (``token:*``) on the window's runs, per 100 runs
   of the window. A system's decision (``system:gate-timeout``) is not one.

4. **Cost per successful outcome**: all the cost recorded for the window's runs (the
   model calls of the cost ledger; the connectors record none today), divided by the
   window's ``done`` runs. The cost of failed and cancelled runs counts against the
   successes. None without a success.

5. **Change lead time**: for each definition version deployed in the window (a playbook,
   an agent or the policies; a rollback deploys a new version) and each version of a
   memory document that a deploy wrote from ``memory/`` and that a playbook names in its
   ``memory:`` (kind ``memory``, as a deploy lists it), the time from its deploy to the
   first completion (``done``) of a run on it: a run of that playbook version; a run that
   pinned that agent or document version; for the policies, which apply at once, a run
   created after the deploy. Reported per change, with the mean and the latest (the
   newest deploy that has a completed run). Per playbook (``playbook=``), that playbook's
   own versions and the documents it names count.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from soloist.store.base import BreakerRow, Transaction
from soloist.store.measures import DURATION_BUCKETS

ENDED = ("done", "failed", "cancelled")
DAY_S = 86400.0
MAX_SERIES_DAYS = 3660
"""The longest per-day series (ten years of points): a longer one is a mistake."""


# -- pure helpers -------------------------------------------------------------------------
def ratio(part: float, whole: float, scale: float = 1.0) -> float | None:
    """``scale * part / whole``, None when there is nothing to divide by."""
    return scale * part / whole if whole else None


def mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return sum(found) / len(found) if found else None


def completion_rate(states: dict[str, int]) -> float | None:
    ended = sum(states.get(s, 0) for s in ENDED)
    return ratio(states.get("done", 0), ended)


def recovery_times(rows: Iterable[dict[str, Any]]) -> list[float]:
    """The time to recovery of each row of ``tx.measures.recoveries`` that recovered."""
    return [float(r["recovered_at"]) - float(r["failed_at"]) for r in rows
            if r["recovered_at"] is not None]


def is_change_of(change: dict[str, Any], playbook: str) -> bool:
    """Whether a change is one of ``playbook``'s: its own version, or a memory document it
    names (``pinned_by``: the playbooks that name it, comma-separated)."""
    if change["kind"] == "playbook":
        return bool(change["name"] == playbook)
    pinners = change.get("pinned_by")
    return change["kind"] == "memory" and isinstance(pinners, str) and (
        playbook in pinners.split(","))


def lead_times(changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each change with its ``lead_time_s`` (None while no run on it completed)."""
    return [{**c, "lead_time_s": (None if c["first_done_at"] is None
                                  else float(c["first_done_at"]) - float(c["deployed_at"]))}
            for c in changes]


def latest_lead_time(changes: Sequence[dict[str, Any]]) -> float | None:
    """The lead time of the newest deploy that has one (``changes`` from :func:`lead_times`)."""
    timed = [c for c in changes if c["lead_time_s"] is not None]
    return max(timed, key=lambda c: (c["deployed_at"], c["version"]))["lead_time_s"] \
        if timed else None


@dataclass
class _Tally:
    """One playbook's counts (or everything's), before they become figures."""

    states: dict[str, int]
    interventions: dict[str, int]
    cost: dict[str, Any]
    recoveries: list[float]
    unrecovered: int = 0

    @classmethod
    def empty(cls) -> _Tally:
        return cls({}, {}, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cached": 0,
                            "cost_usd": 0.0}, [])

    def figures(self) -> dict[str, Any]:
        started = sum(self.states.values())
        done = self.states.get("done", 0)
        acted = sum(self.interventions.values())
        cost = float(self.cost["cost_usd"])
        return {
            "runs": dict(sorted(self.states.items())),
            "started": started,
            "done": done,
            "ended": sum(self.states.get(s, 0) for s in ENDED),
            "completion_rate": completion_rate(self.states),
            "interventions": dict(sorted(self.interventions.items())),
            "human_interventions_per_100_runs": ratio(acted, started, 100.0),
            **{k: self.cost[k] for k in ("calls", "input_tokens", "output_tokens", "cached")},
            "cost_usd": cost,
            "cost_per_successful_outcome_usd": ratio(cost, done),
            "mean_time_to_recovery_s": mean(self.recoveries),
            "recoveries": len(self.recoveries),
            "unrecovered": self.unrecovered,
        }


def combine(runs: Iterable[dict[str, Any]], costs: Iterable[dict[str, Any]],
            interventions: Iterable[dict[str, Any]], recoveries: Iterable[dict[str, Any]],
            changes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The five measures, overall and per playbook, from the rows of ``tx.measures``."""
    total = _Tally.empty()
    each: dict[str, _Tally] = {}

    def of(playbook: str) -> _Tally:
        return each.setdefault(playbook, _Tally.empty())

    for r in runs:
        for tally in (total, of(r["playbook"])):
            tally.states[r["state"]] = tally.states.get(r["state"], 0) + int(r["n"])
    for r in costs:
        for tally in (total, of(r["playbook"])):
            for key in ("calls", "input_tokens", "output_tokens", "cached"):
                tally.cost[key] += int(r[key] or 0)
            tally.cost["cost_usd"] += float(r["cost_usd"] or 0.0)
    for r in interventions:
        what = str(r["what"])
        for tally in (total, of(r["playbook"])):
            tally.interventions[what] = tally.interventions.get(what, 0) + int(r["n"])
    for r in recoveries:
        for tally in (total, of(r["playbook"])):
            if r["recovered_at"] is None:
                tally.unrecovered += 1
            else:
                tally.recoveries.extend(recovery_times([r]))
    timed = lead_times(changes)
    by_playbook = []
    for name in sorted(each):
        mine = [c for c in timed if is_change_of(c, name)]
        by_playbook.append({"playbook": name, **each[name].figures(),
                            "change_lead_time_s": mean(c["lead_time_s"] for c in mine
                                                       if c["lead_time_s"] is not None)})
    return {
        **total.figures(),
        "change_lead_time_s": mean(c["lead_time_s"] for c in timed
                                   if c["lead_time_s"] is not None),
        "latest_change_lead_time_s": latest_lead_time(timed),
        "changes": timed,
        "by_playbook": by_playbook,
    }


def series(rows: Iterable[dict[str, Any]], since: float, now: float) -> list[dict[str, Any]]:
    """One entry per UTC day from ``since`` to ``now`` (days without runs included, so a
    chart's axis is even), from the rows of ``tx.measures.daily``."""
    found = {int(r["day"]): r for r in rows}
    out = []
    for day in range(math.floor(since / DAY_S), math.floor(now / DAY_S) + 1):
        r = found.get(day, {})
        done, failed = int(r.get("done", 0)), int(r.get("failed", 0))
        ended = done + failed + int(r.get("cancelled", 0))
        out.append({
            "day": dt.datetime.fromtimestamp(day * DAY_S, dt.UTC).date().isoformat(),
            "runs": int(r.get("runs", 0)), "done": done, "failed": failed,
            "completion_rate": ratio(done, ended),
            "cost_usd": float(r.get("cost_usd", 0.0)),
            "interventions": int(r.get("interventions", 0)),
        })
    return out


# -- reading them -------------------------------------------------------------------------
def report(tx: Transaction, since: float, playbook: str | None = None) -> dict[str, Any]:
    """The five measures over the window of runs created since ``since``."""
    m = tx.measures
    return combine(m.runs(since, playbook), m.costs(since, playbook),
                   m.interventions(since, playbook), m.recoveries(since, playbook),
                   m.changes(since, playbook))


@dataclass(frozen=True)
class Live:
    """What the engine is doing now, beside the measures (for ``/metrics``)."""

    steps: dict[str, int]  # ready, and the states of steps a worker holds
    breakers: list[BreakerRow]
    durations: dict[str, Any]  # tx.measures.step_durations()


def live(tx: Transaction) -> Live:
    return Live({str(r["state"]): int(r["n"]) for r in tx.measures.steps_by_state()},
                tx.breakers.all(), tx.measures.step_durations())


BREAKER_LEVEL = {"closed": 0, "half_open": 1, "open": 2}
BUCKETS: Sequence[float] = DURATION_BUCKETS
