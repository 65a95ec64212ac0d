"""The five operator measures over real runs, on SQLite and PostgreSQL: runs that succeed,
fail, retry then succeed, are compensated, wait at a gate and are approved, rejected, sent
back with guidance or timed out, a run a person cancels, and two deploys of a playbook.
Each figure is worked out here by hand from the runs, the log and the registry."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.runs import drain
from support.workspaces import write_workspace

from soloist.errors import InputError, NotFound
from soloist.orchestration import measures
from soloist.store.base import BreakerRow, EventRow, LLMCallRow
from soloist.workspace import Workspace

TASKS = '''
from soloist.errors import TransientError, SemanticError

def noop(ctx, **kw):
    return {"step": ctx.step_id}

def flaky(ctx):
    if ctx.attempt <= 1:
        raise TransientError("upstream said 503")
    return {"attempt": ctx.attempt}

def boom(ctx):
    raise ValueError("bad input")

def doubtful(ctx):
    if ctx.guidance:
        return {"fixed": ctx.guidance}
    raise SemanticError("the total looks wrong")

def stage(ctx, line):
    ctx.stage("file.append", {"path": "effects.txt", "line": line})
    return {"staged": line}
'''

PLAIN_V1 = """
name: plain
steps:
  - {id: a, python: "tasks:noop"}
"""
PLAIN_V2 = """
name: plain
steps:
  - {id: a, python: "tasks:noop"}
  - {id: b, python: "tasks:noop"}
"""

PLAYBOOKS = {
    "plain": PLAIN_V1,
    "flaky": """
name: flaky
steps:
  - {id: f, python: "tasks:flaky", retry: {max_attempts: 3, backoff: 0.01, jitter: 0}}
""",
    "broken": """
name: broken
steps:
  - {id: x, python: "tasks:boom"}
""",
    "effects": """
name: effects
steps:
  - id: one
    python: tasks:stage
    args: {line: one}
    compensate: {tool: file.append, args: {path: undo.txt, line: "undo one"}}
  - id: three
    python: tasks:boom
""",
    "gated": """
name: gated
steps:
  - {id: wait, gate: true}
""",
    "doubtful": """
name: doubtful
steps:
  - {id: d, python: "tasks:doubtful"}
""",
    "timed": """
name: timed
steps:
  - id: wait
    gate: {message: "ok?", timeout: 1h}
""",
}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def waiting(ws: Workspace, playbook: str, actor: str = "person:test") -> tuple[str, str]:
    """A run stopped at its gate: its id and its approval's."""
    run_id = ws.start(playbook, actor=actor)
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals(run_id)
    return run_id, pending.approval.id


def charge(ws: Workspace, run_id: str, playbook: str, usd: float) -> None:
    with ws.store.transaction() as tx:
        tx.costs.record([LLMCallRow(run_id, "s", playbook, "test", "m", 10, 5, 1.0, usd,
                                    False, time.time())])


def one(events: list[EventRow], **want: Any) -> EventRow:
    """The first event of the run whose kind and data hold ``want`` (kind=...)."""
    kind = want.pop("kind", "step.transition")
    for e in events:
        if e.kind == kind and all(e.data.get(k) == v for k, v in want.items()):
            return e
    raise AssertionError(f"no {kind} event with {want}")


def scenario(ws: Workspace) -> dict[str, str]:
    """Every kind of run the measures tell apart, one each; returns their ids by name."""
    ids: dict[str, str] = {}
    ids["plain1"] = ws.start("plain")
    drain(ws, ids["plain1"])
    (ws.root / "playbooks" / "plain.yaml").write_text(PLAIN_V2)
    ws.deploy("person:test")
    ids["plain2"] = ws.start("plain")
    drain(ws, ids["plain2"])
    ids["flaky"] = ws.start("flaky")
    drain(ws, ids["flaky"])
    ids["broken"] = ws.start("broken")
    drain(ws, ids["broken"], "failed")
    ids["effects"] = ws.start("effects")
    drain(ws, ids["effects"], "failed")
    ids["approved"], approval = waiting(ws, "gated")
    ws.approve(approval, actor="token:ci")
    drain(ws, ids["approved"])
    ids["rejected"], approval = waiting(ws, "gated")
    ws.reject(approval, "not now")
    ids["guided"] = ws.start("doubtful")
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals(ids["guided"])
    ws.retry(pending.approval.id, "use the net total")
    drain(ws, ids["guided"])
    ids["timed"], _ = waiting(ws, "timed")
    assert ws.gates.expire(time.time() + 7200) == 1  # rejected by the system, not a person
    ids["cancelled"], _ = waiting(ws, "gated")
    ws.cancel(ids["cancelled"])
    charge(ws, ids["plain1"], "plain", 0.01)
    charge(ws, ids["broken"], "broken", 0.02)
    charge(ws, ids["cancelled"], "gated", 0.005)
    return ids


def test_the_five_measures_are_exactly_what_happened(ws: Workspace) -> None:
    ids = scenario(ws)
    runs = {name: ws.get_run(run_id) for name, run_id in ids.items()}
    assert {n: r.state for n, r in runs.items()} == {
        "plain1": "done", "plain2": "done", "flaky": "done", "broken": "failed",
        "effects": "failed", "approved": "done", "rejected": "failed", "guided": "done",
        "timed": "failed", "cancelled": "cancelled"}
    figures = ws.metrics(30)

    # 1. completion: 5 done of 10 ended
    assert figures["runs"] == {"cancelled": 1, "done": 5, "failed": 4}
    assert figures["completion_rate"] == pytest.approx(5 / 10)

    # 2. recovery: the retry that succeeded, the check a person sent back, the failure
    # that was compensated; the failure with nothing to undo never recovered
    log = {name: ws.log(run_id=run_id) for name, run_id in ids.items()}
    flaky = (one(log["flaky"], to="done").ts
             - one(log["flaky"], to="ready", error="upstream said 503").ts)
    guided = (one(log["guided"], kind="approval.decided").ts
              - one(log["guided"], to="awaiting_approval").ts)
    effects = one(log["effects"], to="compensated").ts - one(log["effects"], to="failed").ts
    assert figures["recoveries"] == 3 and figures["unrecovered"] == 1
    assert figures["mean_time_to_recovery_s"] == pytest.approx((flaky + guided + effects) / 3)

    # 3. interventions: approve (a token), reject, retry with guidance, cancel (people);
    # the gate that timed out was decided by the system
    assert figures["interventions"] == {"approved": 1, "cancelled": 1, "rejected": 1,
                                        "retry": 1}
    assert figures["human_interventions_per_100_runs"] == pytest.approx(100 * 4 / 10)

    # 4. cost: every run's cost over the successes
    assert figures["cost_usd"] == pytest.approx(0.035)
    assert figures["cost_per_successful_outcome_usd"] == pytest.approx(0.035 / 5)

    # 5. change lead time: each deployed version to its first completed run
    done = [r for r in runs.values() if r.state == "done"]
    expected = {}
    for row in ws.definitions():
        for version in ws.history(row.kind, row.name):
            if version.kind == "playbook":
                on_it = [r for r in done if r.playbook == version.name
                         and r.playbook_version == version.version]
            else:  # policies apply at once: the runs created after the deploy
                on_it = [r for r in done if r.created_at >= version.deployed_at]
            first = min((r.finished_at or 0.0 for r in on_it), default=None)
            expected[(version.kind, version.name, version.version)] = (
                None if first is None else first - version.deployed_at)
    got = {(c["kind"], c["name"], c["version"]): c["lead_time_s"] for c in figures["changes"]}
    assert got.keys() == expected.keys()
    assert ("playbook", "plain", 2) in got and ("policies", "policies", 1) in got
    for key, value in expected.items():
        assert got[key] == (None if value is None else pytest.approx(value)), key
    assert got[("playbook", "broken", 1)] is None  # never completed
    timed = [v for v in expected.values() if v is not None]
    assert figures["change_lead_time_s"] == pytest.approx(sum(timed) / len(timed))
    assert figures["latest_change_lead_time_s"] == pytest.approx(
        expected[("playbook", "plain", 2)])  # the newest deploy

    by = {p["playbook"]: p for p in figures["by_playbook"]}
    assert set(by) == set(PLAYBOOKS)
    assert by["plain"]["completion_rate"] == 1.0 and by["plain"]["started"] == 2
    assert by["plain"]["cost_per_successful_outcome_usd"] == pytest.approx(0.005)
    assert by["plain"]["change_lead_time_s"] == pytest.approx(
        (expected[("playbook", "plain", 1)] + expected[("playbook", "plain", 2)]) / 2)
    assert by["broken"]["cost_per_successful_outcome_usd"] is None
    assert by["broken"]["unrecovered"] == 1 and by["broken"]["completion_rate"] == 0.0
    assert by["gated"]["runs"] == {"cancelled": 1, "done": 1, "failed": 1}
    assert by["gated"]["human_interventions_per_100_runs"] == pytest.approx(100 * 3 / 3)
    assert by["flaky"]["mean_time_to_recovery_s"] == pytest.approx(flaky)
    assert by["timed"]["interventions"] == {}

    # one playbook: the same figures as its row, and only its own changes
    only = ws.metrics(30, playbook="plain")
    assert only["runs"] == {"done": 2} and only["cost_usd"] == pytest.approx(0.01)
    assert [(c["name"], c["version"]) for c in only["changes"]] == [("plain", 1), ("plain", 2)]
    assert [p["playbook"] for p in only["by_playbook"]] == ["plain"]


def test_the_window_counts_only_the_runs_created_in_it(ws: Workspace) -> None:
    before = ws.start("plain")
    drain(ws, before)
    charge(ws, before, "plain", 1.0)
    middle = time.time()
    while time.time() <= middle:  # the next run is created strictly after
        time.sleep(0.001)
    after = ws.start("broken")
    drain(ws, after, "failed")
    with ws.store.read() as tx:
        figures = measures.report(tx, middle)
    assert figures["runs"] == {"failed": 1} and figures["cost_usd"] == 0.0
    assert figures["completion_rate"] == 0.0 and figures["unrecovered"] == 1
    assert figures["changes"] == []  # every definition was deployed before


def test_the_daily_series_adds_up_to_the_measures(ws: Workspace) -> None:
    ids = scenario(ws)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    figures, days = ws.metrics(3), ws.metrics_series(3)
    assert len(days) in (4, 5)  # every UTC day the window touches, empty ones included
    assert days[-1]["day"] in (today, time.strftime("%Y-%m-%d", time.gmtime()))
    assert sum(d["runs"] for d in days) == len(ids)
    assert sum(d["done"] for d in days) == 5 and sum(d["failed"] for d in days) == 4
    assert sum(d["interventions"] for d in days) == 4
    assert sum(d["cost_usd"] for d in days) == pytest.approx(figures["cost_usd"])
    for d in days:
        if d["runs"] == 0:
            assert d["completion_rate"] is None and d["cost_usd"] == 0.0
    assert sum(d["runs"] for d in ws.metrics_series(3, playbook="plain")) == 2


def test_bad_windows_and_unknown_playbooks_are_one_sentence(ws: Workspace) -> None:
    for days in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError, match="days must be positive"):
            ws.metrics(days)
    with pytest.raises(NotFound, match="no playbook named 'nope'"):
        ws.metrics(30, playbook="nope")
    with pytest.raises(NotFound, match="no playbook named 'nope'"):
        ws.metrics_series(30, playbook="nope")
    with pytest.raises(InputError, match="a series covers at most 3660 days, not 1e"):
        ws.metrics_series(1e9)
    assert len(ws.metrics_series(3660)) in (3660, 3661)
    empty = ws.metrics()
    assert empty["completion_rate"] is None and empty["mean_time_to_recovery_s"] is None
    assert empty["human_interventions_per_100_runs"] is None
    assert empty["cost_per_successful_outcome_usd"] is None and empty["by_playbook"] == []


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse(text: str) -> tuple[dict[str, str], dict[str, str],
                              dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """HELP and TYPE by family, and each sample's value by name and labels; every line
    must be one of the three, and every sample of a family declared before it."""
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            helps[name] = help_
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name in helps and kind in ("gauge", "counter", "histogram"), line
            types[name] = kind
        else:
            match = SAMPLE.match(line)
            assert match, line
            name, labels, value = match.groups()
            family = re.sub(r"_(bucket|sum|count)$", "", name) \
                if re.sub(r"_(bucket|sum|count)$", "", name) in types else name
            assert family in types, line
            pairs = tuple(LABEL.findall(labels or ""))
            assert ",".join(f'{k}="{v}"' for k, v in pairs) == (labels or ""), line
            samples[(name, pairs)] = float(value)
    return helps, types, samples


def test_prometheus_text_shows_the_same_figures_and_the_engine(ws: Workspace) -> None:
    ids = scenario(ws)
    stuck = ws.start("gated")  # a step waiting at a gate is neither queued nor in flight
    ws.worker().run(until_idle=True)
    queued = ws.start("plain")  # no worker: its step waits in the queue
    with ws.store.transaction() as tx:
        now = time.time()
        tx.breakers.put(BreakerRow('mail "out"\\box\nnext', "open", 5, now, now))
        tx.breakers.put(BreakerRow("llm", "half_open", 0, now, now))
        tx.breakers.put(BreakerRow("calendar", "closed", 0, None, now))
    figures = ws.metrics(30)
    text = ws.prometheus_metrics(30)
    helps, types, samples = parse(text)
    assert set(helps) == set(types) and all(helps.values())
    assert all(name.startswith("soloist_") for name in types)
    assert types["soloist_completion_rate"] == "gauge"
    assert types["soloist_step_duration_seconds"] == "histogram"

    def value(metric: str, /, **labels: str) -> float:
        return samples[(metric, tuple(labels.items()))]

    # the figures of `soloist metrics`, over the same window (two more runs, not ended)
    assert value("soloist_completion_rate") == pytest.approx(figures["completion_rate"])
    assert value("soloist_runs", state="running") == 2
    assert value("soloist_playbook_completion_rate", playbook="plain") == 1.0
    assert value("soloist_mean_time_to_recovery_seconds") == pytest.approx(
        figures["mean_time_to_recovery_s"])
    assert value("soloist_recoveries") == 3
    assert value("soloist_human_interventions_per_100_runs") == pytest.approx(100 * 4 / 12)
    assert value("soloist_cost_per_successful_outcome_usd") == pytest.approx(0.035 / 5)
    assert value("soloist_playbook_cost_per_successful_outcome_usd", playbook="plain") \
        == pytest.approx(0.005)
    assert ("soloist_playbook_cost_per_successful_outcome_usd",
            (("playbook", "broken"),)) not in samples  # no success: no value, not a zero
    assert value("soloist_change_lead_time_latest_seconds") == pytest.approx(
        figures["latest_change_lead_time_s"])
    assert value("soloist_change_lead_time_seconds", kind="playbook", name="plain",
                 version="2") == pytest.approx(figures["latest_change_lead_time_s"])
    assert value("soloist_measures_window_seconds") == 30 * 86400

    # the engine now
    assert value("soloist_queue_depth") == 1
    assert value("soloist_steps_in_flight", state="claimed") == 0
    assert value("soloist_steps_in_flight", state="executing") == 0
    assert value("soloist_breaker_state", breaker='mail \\"out\\"\\\\box\\nnext') == 2
    assert value("soloist_breaker_state", breaker="llm") == 1
    assert value("soloist_breaker_state", breaker="calendar") == 0
    finished = [s for run_id in ids.values() for s in ws.show(run_id).steps
                if s.state in ("done", "failed", "compensated") and s.started_at is not None
                and s.finished_at is not None]
    took = [s.finished_at - s.started_at for s in finished]  # type: ignore[operator]
    assert value("soloist_step_duration_seconds_count") == len(finished) > 0
    assert value("soloist_step_duration_seconds_sum") == pytest.approx(sum(took))
    assert value("soloist_step_duration_seconds_bucket", le="+Inf") == len(finished)
    assert value("soloist_step_duration_seconds_bucket", le="1.0") == len(
        [t for t in took if t <= 1.0])
    bounds = [k[1][0][1] for k in samples if k[0] == "soloist_step_duration_seconds_bucket"]
    counts = [value("soloist_step_duration_seconds_bucket", le=b) for b in bounds]
    assert counts == sorted(counts)  # cumulative
    assert ws.get_run(stuck).state == "running" and ws.get_run(queued).state == "running"
