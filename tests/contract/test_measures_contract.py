"""The operator measures' reads (``tx.measures``), the same on every backend, over rows
written by hand: the window, who counts as a person, what is a first failure and what a
recovery, which run completes a change of a playbook, an agent or the policies."""

from __future__ import annotations

from typing import Any

import pytest

from soloist.store.base import DefinitionRow, LLMCallRow, NewEvent, RunRow, Store

DAY = 86400.0
T0 = 20000 * DAY  # midnight UTC
SINCE = T0 + 100.0


def run(tx: Any, run_id: str, playbook: str, created: float, state: str = "running",
        finished: float | None = None, version: int = 1, pins: Any = None) -> None:
    tx.runs.insert(RunRow(run_id, playbook, version, "running", {}, "default", 0, created,
                          None, None, None, None, 1, "person:x", pins=pins))
    if state != "running":
        tx.runs.set_state(run_id, state, expect=["running"], finished_at=finished)


def event(tx: Any, kind: str, run_id: str, ts: float, step: str | None = "s",
          actor: str = "worker:1", **data: Any) -> None:
    tx.events.append(NewEvent(kind, data, run_id=run_id, step_id=step, actor=actor, ts=ts))


def move(tx: Any, run_id: str, ts: float, old: str, new: str, step: str = "s",
         actor: str = "worker:1", **data: Any) -> None:
    event(tx, "step.transition", run_id, ts, step, actor, **{"from": old, "to": new, **data})


@pytest.fixture
def seeded(store: Store) -> Store:
    with store.transaction() as tx:
        run(tx, "old", "a", T0, "done", T0 + 1)  # before the window
        run(tx, "a1", "a", SINCE + 10, "done", SINCE + 20)
        run(tx, "a2", "a", SINCE + 30, "failed", SINCE + 40)
        run(tx, "b1", "b", SINCE + DAY, "cancelled", SINCE + DAY + 5)
        run(tx, "b2", "b", SINCE + DAY + 10)
        tx.costs.record([
            LLMCallRow(r, "s", p, "t", "m", 10, 2, 1.0, usd, cached, SINCE + 50)
            for r, p, usd, cached in (("old", "a", 9.0, False), ("a1", "a", 0.5, False),
                                      ("a2", "a", 0.25, True), ("b1", "b", 0.125, False))])
        # a retry that succeeds (a1), after a wait that is no failure of its own
        move(tx, "a1", SINCE + 11, "ready", "claimed")
        move(tx, "a1", SINCE + 12, "executing", "ready", error="503")
        move(tx, "a1", SINCE + 13, "executing", "done", step="other")  # another step
        move(tx, "a1", SINCE + 15, "executing", "done")
        # a person's approval, then a rejection is a decision, not a failure (a2) ...
        event(tx, "approval.decided", "a2", SINCE + 31, actor="person:ann",
              decision="approved")
        move(tx, "a2", SINCE + 32, "awaiting_approval", "failed", actor="person:ann",
             error="rejected: no")
        event(tx, "approval.decided", "a2", SINCE + 32, actor="token:ci", decision="rejected")
        # ... then a deterministic failure that nothing recovers
        move(tx, "a2", SINCE + 35, "executing", "failed", step="t", error="bad input")
        event(tx, "approval.decided", "a2", SINCE + 36, actor="system:gate-timeout",
              decision="rejected")  # after the failure: it moved on at a gate
        # a stuck step, then compensation (b1), cancelled by a person
        move(tx, "b1", SINCE + DAY + 1, "executing", "ready",
             reason="lease of w expired")
        event(tx, "run.compensating", "b1", SINCE + DAY + 2, None, "person:bo",
              then="cancelled")
        move(tx, "b1", SINCE + DAY + 4, "done", "compensated", step="x")
        event(tx, "run.cancelled", "b1", SINCE + DAY + 5, None, "system")
        # a failed check waiting for a person (b2), not decided yet; a system's cancel
        move(tx, "b2", SINCE + DAY + 11, "executing", "awaiting_approval",
             error="the total looks wrong")
        event(tx, "run.compensating", "b2", SINCE + DAY + 12, None, "person:bo", then="failed")
        event(tx, "run.cancelled", "old", T0 + 1, None, "person:bo")  # outside the window
    return store


def test_runs_and_costs_of_the_window(seeded: Store) -> None:
    with seeded.read() as tx:
        assert tx.measures.runs(SINCE) == [
            {"playbook": "a", "state": "done", "n": 1},
            {"playbook": "a", "state": "failed", "n": 1},
            {"playbook": "b", "state": "cancelled", "n": 1},
            {"playbook": "b", "state": "running", "n": 1}]
        assert tx.measures.runs(SINCE, "b") == [
            {"playbook": "b", "state": "cancelled", "n": 1},
            {"playbook": "b", "state": "running", "n": 1}]
        assert [dict(r, cost_usd=pytest.approx(r["cost_usd"])) for r in
                tx.measures.costs(SINCE)] == [
            {"playbook": "a", "calls": 2, "input_tokens": 20, "output_tokens": 4, "cached": 1,
             "cost_usd": 0.75},
            {"playbook": "b", "calls": 1, "input_tokens": 10, "output_tokens": 2, "cached": 0,
             "cost_usd": 0.125}]
        assert len(tx.measures.runs(T0)) == 4 and tx.measures.runs(SINCE + 5 * DAY) == []


def test_interventions_are_people_and_tokens_deciding_or_cancelling(seeded: Store) -> None:
    with seeded.read() as tx:
        assert tx.measures.interventions(SINCE) == [
            {"playbook": "a", "what": "approved", "n": 1},
            {"playbook": "a", "what": "rejected", "n": 1},
            {"playbook": "b", "what": "cancelled", "n": 1}]
        assert tx.measures.interventions(SINCE, "b") == [
            {"playbook": "b", "what": "cancelled", "n": 1}]


def test_first_failures_and_how_runs_moved_on(seeded: Store) -> None:
    with seeded.read() as tx:
        found = {r["run_id"]: (r["playbook"], r["failed_at"], r["recovered_at"])
                 for r in tx.measures.recoveries(SINCE)}
        assert found == {
            "a1": ("a", SINCE + 12, SINCE + 15),  # its own step done, not the other one
            "a2": ("a", SINCE + 35, SINCE + 36),  # the rejection before was no failure
            "b1": ("b", SINCE + DAY + 1, SINCE + DAY + 4),  # compensated
            "b2": ("b", SINCE + DAY + 11, None),  # still waiting
        }
        assert [r["run_id"] for r in tx.measures.recoveries(SINCE, "b")] == ["b1", "b2"]


def test_a_change_completes_with_the_first_run_on_it(store: Store) -> None:
    with store.transaction() as tx:
        for kind, name, version, at in (("playbook", "a", 1, T0), ("playbook", "a", 2, T0 + 50),
                                        ("agent", "helper", 1, T0), ("agent", "helper", 2,
                                                                     T0 + 60),
                                        ("policies", "policies", 1, T0 + 70),
                                        ("playbook", "b", 1, T0 + 80)):
            tx.registry.insert(DefinitionRow(kind, name, version, f"d{version}", {}, None,
                                             "person:x", at, None))
        run(tx, "r1", "a", T0 + 10, "done", T0 + 20)
        run(tx, "r2", "a", T0 + 55, "failed", T0 + 58, version=2)
        run(tx, "r3", "a", T0 + 65, "done", T0 + 90, version=2,
            pins={"agents": {"helper": 1}})
        run(tx, "r4", "a", T0 + 75, "done", T0 + 85, version=2,
            pins={"agents": {"helper": 2}})
        run(tx, "r5", "b", T0 + 81, "running", version=1)
    with store.read() as tx:
        got = [(c["kind"], c["name"], c["version"], c["first_done_at"])
               for c in tx.measures.changes(T0)]
        assert got == [
            ("agent", "helper", 1, T0 + 90),  # r3 pinned it (r1 pinned nothing)
            ("playbook", "a", 1, T0 + 20),
            ("playbook", "a", 2, T0 + 85),  # r2 failed; r4 finished before r3
            ("agent", "helper", 2, T0 + 85),
            ("policies", "policies", 1, T0 + 85),  # of the runs created after it, r4
            ("playbook", "b", 1, None),  # r5 is still running
        ]
        assert [(c["name"], c["version"]) for c in tx.measures.changes(T0 + 40, "a")] == [
            ("a", 2)]


def test_the_day_by_day_rows_group_runs_by_the_day_they_were_created(seeded: Store) -> None:
    with seeded.read() as tx:
        days = tx.measures.daily(SINCE)
    assert [{**d, "cost_usd": pytest.approx(d["cost_usd"])} for d in days] == [
        {"day": 20000, "runs": 2, "done": 1, "failed": 1, "cancelled": 0, "cost_usd": 0.75,
         "interventions": 2},
        {"day": 20001, "runs": 2, "done": 0, "failed": 0, "cancelled": 1, "cost_usd": 0.125,
         "interventions": 1}]


def test_nothing_to_measure_is_empty(store: Store) -> None:
    with store.read() as tx:
        m = tx.measures
        assert m.runs(0) == m.costs(0) == m.interventions(0) == m.recoveries(0) == []
        assert m.changes(0) == m.daily(0) == m.steps_by_state() == []
        durations = m.step_durations()
        assert durations["count"] == 0 and durations["sum"] == 0.0 and durations["le_0"] == 0
