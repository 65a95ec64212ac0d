"""The operator measures and the engine's state in the Prometheus text exposition format
(version 0.0.4), as ``/metrics`` serves them.

Every family has its ``# HELP`` and ``# TYPE``; a measure that has no value (no run ended,
no recovery yet) has no sample, rather than a made-up zero. The five measures are over the
same window as ``soloist metrics`` (the runs created in the last ``days``), overall and,
with a ``playbook`` label, per playbook. The engine's state is as it is now: queue depth
(ready steps), steps in flight (held by a worker), one gauge per circuit breaker, and a
histogram of finished steps' durations (from their first claim to their finish, waits at
gates and retries included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from soloist.orchestration.measures import BREAKER_LEVEL, BUCKETS, Live

#: Steps a worker holds, always shown (other held states appear when there are some).
IN_FLIGHT = ("claimed", "executing")

Labels = dict[str, str]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str,
               samples: Iterable[tuple[Labels, float | None]]) -> None:
        self.lines.append(f"# HELP {name} {escape_help(help_)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if value is not None:
                self.sample(name, labels, value)

    def sample(self, name: str, labels: Labels, value: float) -> None:
        shown = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{shown}}} {number(value)}" if shown
                          else f"{name} {number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _measure(out: Exposition, figures: dict[str, Any], key: str, name: str, help_: str) -> None:
    out.family(f"soloist_{name}", "gauge", help_, [({}, figures[key])])
    out.family(f"soloist_playbook_{name}", "gauge", f"{help_}, per playbook",
               [({"playbook": p["playbook"]}, p[key]) for p in figures["by_playbook"]])


def prometheus_text(figures: dict[str, Any], now: Live, window_s: float) -> str:
    """``figures`` from :func:`soloist.orchestration.measures.report`, ``now`` from
    :func:`~soloist.orchestration.measures.live`."""
    out = Exposition()
    out.family("soloist_measures_window_seconds", "gauge",
               "The measures count the runs created in this many last seconds",
               [({}, window_s)])
    out.family("soloist_runs", "gauge", "Runs created in the window, by state",
               [({"state": s}, n) for s, n in figures["runs"].items()])
    out.family("soloist_playbook_runs", "gauge", "Runs created in the window, by playbook and "
               "state", [({"playbook": p["playbook"], "state": s}, n)
                         for p in figures["by_playbook"] for s, n in p["runs"].items()])
    _measure(out, figures, "completion_rate", "completion_rate",
             "Workflow completion rate: runs done over runs ended")
    _measure(out, figures, "mean_time_to_recovery_s", "mean_time_to_recovery_seconds",
             "Mean time from a run's first failure to the moment it moved on")
    _measure(out, figures, "recoveries", "recoveries",
             "Runs that failed and moved on (the count behind the mean time to recovery)")
    _measure(out, figures, "human_interventions_per_100_runs",
             "human_interventions_per_100_runs",
             "Decisions at gates and cancels by people or API tokens, per 100 runs")
    _measure(out, figures, "cost_usd", "cost_usd", "Cost recorded for the window's runs, USD")
    _measure(out, figures, "cost_per_successful_outcome_usd",
             "cost_per_successful_outcome_usd",
             "All cost of the window's runs over its successful runs, USD")
    out.family("soloist_change_lead_time_mean_seconds", "gauge",
               "Mean time from a deploy to the first completed run on the new version",
               [({}, figures["change_lead_time_s"])])
    out.family("soloist_change_lead_time_latest_seconds", "gauge",
               "Change lead time of the newest deploy that has a completed run",
               [({}, figures["latest_change_lead_time_s"])])
    out.family("soloist_change_lead_time_seconds", "gauge",
               "Time from a deploy to the first completed run on that version, per change",
               [({"kind": c["kind"], "name": c["name"], "version": str(c["version"])},
                 c["lead_time_s"]) for c in figures["changes"]])
    out.family("soloist_queue_depth", "gauge", "Steps ready to be claimed",
               [({}, now.steps.get("ready", 0))])
    held = {s: now.steps.get(s, 0) for s in IN_FLIGHT}
    held.update({s: n for s, n in now.steps.items() if s != "ready"})
    out.family("soloist_steps_in_flight", "gauge", "Steps a worker holds, by state",
               [({"state": s}, n) for s, n in held.items()])
    out.family("soloist_breaker_state", "gauge",
               "Circuit breaker state: 0 closed, 1 half-open, 2 open",
               [({"breaker": b.name}, BREAKER_LEVEL.get(b.state, 2)) for b in now.breakers])
    name = "soloist_step_duration_seconds"
    out.family(name, "histogram",
               "Finished steps' durations, from their first claim to their finish", [])
    for i, bound in enumerate(BUCKETS):
        out.sample(f"{name}_bucket", {"le": number(float(bound))}, now.durations[f"le_{i}"])
    out.sample(f"{name}_bucket", {"le": "+Inf"}, now.durations["count"])
    out.sample(f"{name}_sum", {}, now.durations["sum"])
    out.sample(f"{name}_count", {}, now.durations["count"])
    return out.text()
