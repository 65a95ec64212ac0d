"""Waits, skipped steps, the bus looked back over, and the workspace's clock: the same on
every backend."""

from __future__ import annotations

from soloist.store.base import NewStep, RunRow, Store
from soloist.store.waits import EVENT, TIMEOUT, WaitRow

NOW = 1_000_000.0


def seed(store: Store, states: dict[str, str]) -> None:
    with store.transaction() as tx:
        tx.runs.insert(RunRow(id="r1", playbook="p", playbook_version=1, state="running",
                              inputs={}, queue="default", priority=0, created_at=NOW,
                              deadline_at=None, finished_at=None, trigger={}, error=None,
                              steps_remaining=len(states), created_by="tester"))
        tx.steps.insert_many([
            NewStep("r1", step_id, i, "step", "p", 1, "default", 0, state, 0, NOW, NOW)
            for i, (step_id, state) in enumerate(states.items())])


def wait(step_id: str, deadline: float | None, topic: str | None = "a.b") -> WaitRow:
    return WaitRow("r1", step_id, topic, "event.payload.n == 1", {"inputs": {"k": 1}},
                   deadline, NOW)


def test_a_wait_begins_once_ends_once_and_wakes_its_step(store: Store) -> None:
    seed(store, {"w1": "waiting", "w2": "waiting", "done": "done"})
    with store.transaction() as tx:
        tx.waits.lock()
        first = tx.waits.begin(wait("w1", NOW + 10))
        again = tx.waits.begin(wait("w1", NOW + 99))  # a second begin keeps the first
        tx.waits.begin(wait("w2", None))
        tx.waits.begin(wait("done", NOW))  # its step is not waiting: never open or due
    assert first == again and again.deadline == NOW + 10
    assert again.scope == {"inputs": {"k": 1}} and again.when == "event.payload.n == 1"
    with store.transaction() as tx:
        assert [w.step_id for w in tx.waits.open()] == ["w1", "w2"]
        assert tx.waits.due(NOW + 9) == []
        assert [w.step_id for w in tx.waits.due(NOW + 10)] == ["w1"]
        event = {"topic": "a.b", "payload": {"n": 1}, "run_id": None, "bus_id": 7}
        assert tx.waits.resolve("r1", "w2", EVENT, event, NOW + 1)
        assert not tx.waits.resolve("r1", "w2", TIMEOUT, None, NOW + 2)
        assert tx.waits.wake("r1", "w2", NOW + 1)
        assert not tx.waits.wake("r1", "w2", NOW + 1)  # ready now, not waiting
        assert not tx.waits.wake("r1", "done", NOW + 1)
    with store.read() as tx:
        ended = tx.waits.get("r1", "w2")
        assert ended is not None and ended.outcome == EVENT and ended.event == event
        assert [w.step_id for w in tx.waits.open()] == ["w1"]
        step = tx.steps.get("r1", "w2")
        assert step is not None and step.state == "ready" and step.available_at == NOW + 1
        assert tx.waits.get("r1", "nothing") is None


def test_skip_open_leaves_finished_and_dispatching_steps(store: Store) -> None:
    seed(store, {"a": "done", "b": "persisting", "c": "awaiting_approval", "d": "waiting",
                 "e": "scheduled", "f": "failed"})
    with store.transaction() as tx:
        skipped = tx.waits.skip_open("r1", NOW)
    assert skipped == [("c", "awaiting_approval"), ("d", "waiting"), ("e", "scheduled")]
    with store.read() as tx:
        assert {s.step_id: s.state for s in tx.steps.for_run("r1")} == {
            "a": "done", "b": "persisting", "c": "skipped", "d": "skipped", "e": "skipped",
            "f": "failed"}


def test_the_bus_is_looked_back_over_by_topic_and_time(store: Store) -> None:
    with store.transaction() as tx:
        tx.bus.publish("email.received", {"n": 1}, None, NOW - 1)
        tx.bus.publish("email.received", {"n": 2}, "r9", NOW)
        tx.bus.publish("email_received", {"n": 3}, None, NOW)  # `_` is no wildcard
        tx.bus.publish("calendar.changed", {"n": 4}, None, NOW + 1)
    with store.read() as tx:
        got = tx.waits.bus_since(["email.received"], NOW)
        assert [(m["payload"], m["run_id"]) for m in got] == [({"n": 2}, "r9")]
        assert [m["payload"]["n"] for m in tx.waits.bus_since(["*.changed", "email.*"],
                                                              NOW - 1)] == [1, 2, 4]


def test_the_clock_offset_starts_at_zero_and_is_kept(store: Store) -> None:
    with store.read() as tx:
        assert tx.clock.offset() == 0.0
    with store.transaction() as tx:
        tx.clock.set_offset(3 * 86400.0)
        tx.clock.set_offset(4 * 86400.0)
    with store.read() as tx:
        assert tx.clock.offset() == 4 * 86400.0
