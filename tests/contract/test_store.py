"""The storage contract, run unchanged on every backend (see ``conftest.py``).

A test here states what any store must do; nothing in it knows which database answers.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from soloist.errors import ConfigError, StoreError, StoreUnavailable
from soloist.store import migrations
from soloist.store.base import (
    ApprovalRow,
    DefinitionRow,
    EventRow,
    IntentRow,
    NewEvent,
    NewStep,
    RunRow,
    StepRow,
    StepUpdate,
    Store,
)
from soloist.store.repositories import chain_hash
from soloist.store.seam import dumps

NOW = 1_000_000.0
LEASE = 30.0


# -- helpers ---------------------------------------------------------------------------


def make_run(run_id: str = "r1", *, playbook: str = "pb", state: str = "running",
             created_at: float = NOW, deadline_at: float | None = None,
             steps_remaining: int = 0, queue: str = "default") -> RunRow:
    return RunRow(
        id=run_id, playbook=playbook, playbook_version=1, state=state,
        inputs={"x": 1, "text": "naïve 100%"}, queue=queue, priority=0,
        created_at=created_at, deadline_at=deadline_at, finished_at=None,
        trigger={"kind": "manual"}, error=None, steps_remaining=steps_remaining,
        created_by="tester",
    )


def make_step(step_id: str, *, run_id: str = "r1", position: int = 0, priority: int = 0,
              available_at: float = NOW, state: str = "ready", pending_needs: int = 0,
              playbook: str = "pb", queue: str = "default") -> NewStep:
    return NewStep(
        run_id=run_id, step_id=step_id, position=position, kind="step", playbook=playbook,
        playbook_version=1, queue=queue, priority=priority, state=state,
        pending_needs=pending_needs, available_at=available_at, created_at=NOW,
    )


def seed(store: Store, *steps: NewStep) -> None:
    """Insert the steps, and the runs they belong to if these are new."""
    with store.transaction() as tx:
        for run_id in dict.fromkeys(s.run_id for s in steps):
            if tx.runs.get(run_id) is None:
                tx.runs.insert(make_run(run_id))
        tx.steps.insert_many(list(steps))


def claim(store: Store, limit: int = 10, *, now: float = NOW, owner: str = "w1",
          **kwargs: Any) -> list[StepRow]:
    with store.transaction() as tx:
        return tx.steps.claim(owner, now, LEASE, limit, **kwargs)


def step(store: Store, step_id: str, run_id: str = "r1") -> StepRow:
    with store.read() as tx:
        row = tx.steps.get(run_id, step_id)
    assert row is not None
    return row


def all_events(store: Store) -> list[EventRow]:
    with store.read() as tx:
        return tx.events.scan(0, 10_000)


def assert_chained(events: list[EventRow]) -> None:
    """Contiguous from 1, each linked to the one before, each hash recomputable."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    prev = ""
    for e in events:
        assert e.prev_hash == prev
        event = NewEvent(kind=e.kind, data=e.data, run_id=e.run_id, step_id=e.step_id,
                         actor=e.actor, ts=e.ts)
        assert e.hash == chain_hash(prev, e.seq, event, dumps(e.data))
        prev = e.hash


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- runs ------------------------------------------------------------------------------


def test_run_insert_get_round_trips(store: Store) -> None:
    run = make_run(deadline_at=NOW + 60, steps_remaining=3)
    with store.transaction() as tx:
        tx.runs.insert(run)
    with store.read() as tx:
        assert tx.runs.get("r1") == run
        assert tx.runs.get("missing") is None


def test_run_list_filters_orders_and_limits(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("a", playbook="p1", created_at=NOW + 1))
        tx.runs.insert(make_run("b", playbook="p2", created_at=NOW + 2))
        tx.runs.insert(make_run("c", playbook="p1", created_at=NOW + 3, state="done"))
    with store.read() as tx:
        assert [r.id for r in tx.runs.list()] == ["c", "b", "a"]
        assert [r.id for r in tx.runs.list(state="running")] == ["b", "a"]
        assert [r.id for r in tx.runs.list(playbook="p1")] == ["c", "a"]
        assert [r.id for r in tx.runs.list(state="running", playbook="p1")] == ["a"]
        assert [r.id for r in tx.runs.list(limit=1)] == ["c"]
        assert tx.runs.count_by_state() == {"running": 2, "done": 1}


def test_run_set_state_only_from_expected_states(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run())
    with store.transaction() as tx:
        assert not tx.runs.set_state("r1", "done", expect=["pending"])
        assert not tx.runs.set_state("missing", "done", expect=["running"])
        assert tx.runs.set_state("r1", "compensating", expect=["running", "pending"],
                                 error="boom", final_state="failed")
    with store.transaction() as tx:
        # NULL arguments keep what is there.
        assert tx.runs.set_state("r1", "failed", expect=["compensating"], finished_at=NOW + 5)
    with store.read() as tx:
        run = tx.runs.get("r1")
    assert run is not None
    assert (run.state, run.error, run.finished_at, run.final_state) == (
        "failed", "boom", NOW + 5, "failed")


def test_run_step_finished_counts_down_once_per_occurrence(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("a", steps_remaining=3))
        tx.runs.insert(make_run("b", steps_remaining=1))
    with store.transaction() as tx:
        counts = tx.runs.step_finished(["a", "b", "a", "missing"])
    assert sorted(counts) == [("a", 1), ("b", 0)]


def test_run_past_deadline(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("late", deadline_at=NOW - 10))
        tx.runs.insert(make_run("later", deadline_at=NOW - 5))
        tx.runs.insert(make_run("fine", deadline_at=NOW + 10))
        tx.runs.insert(make_run("none"))
        tx.runs.insert(make_run("done", deadline_at=NOW - 10, state="done"))
    with store.read() as tx:
        assert [r.id for r in tx.runs.past_deadline(NOW, 10)] == ["late", "later"]
        assert [r.id for r in tx.runs.past_deadline(NOW, 1)] == ["late"]


def test_a_failed_transaction_changes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.runs.insert(make_run())
        raise RuntimeError("abandon")
    with store.read() as tx:
        assert tx.runs.get("r1") is None


def test_read_sees_one_snapshot(store: Store) -> None:
    with store.read() as snapshot:
        assert snapshot.runs.list() == []
        with store.transaction() as tx:
            tx.runs.insert(make_run())
        assert snapshot.runs.get("r1") is None
    with store.read() as tx:
        assert tx.runs.get("r1") is not None


def test_migrations_are_recorded_once(store: Store,
                                      open_another: Callable[[], Store]) -> None:
    open_another()  # migrating an up-to-date database changes nothing
    with store.read() as tx:
        rows = tx.events.conn.fetch(  # type: ignore[attr-defined]
            "SELECT version, name FROM schema_migrations ORDER BY version")
    backend = "sqlite" if store.url.startswith("sqlite") else "postgres"
    shipped = migrations.load(f"soloist.store.{backend}.migrations")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in shipped]
    assert shipped[0].name == "initial"


def test_a_duplicate_key_is_a_store_error(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run())
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.runs.insert(make_run())
    with store.read() as tx:  # the store is still usable
        assert len(tx.runs.list()) == 1


# -- steps: claims and leases ----------------------------------------------------------


def test_step_ids_come_from_the_database(store: Store) -> None:
    seed(store, make_step("a"), make_step("b", position=1))
    with store.read() as tx:
        rows = tx.steps.for_run("r1")
    assert [r.step_id for r in rows] == ["a", "b"]
    assert len({r.id for r in rows}) == 2
    a = rows[0]
    assert (a.state, a.resume, a.attempt, a.lease_owner, a.lease_token, a.output) == (
        "ready", "execute", 1, None, 0, None)


def test_claim_orders_by_priority_then_available_at(store: Store) -> None:
    seed(
        store,
        make_step("low", priority=0, available_at=NOW - 30),
        make_step("high-late", priority=5, available_at=NOW - 10),
        make_step("high-early", priority=5, available_at=NOW - 20),
        make_step("mid", priority=2, available_at=NOW - 5),
    )
    order = [claim(store, 1)[0].step_id for _ in range(4)]
    assert order == ["high-early", "high-late", "mid", "low"]
    assert claim(store, 1) == []


def test_claim_respects_limit_and_leases_what_it_returns(store: Store) -> None:
    seed(store, *[make_step(f"s{i}", position=i, priority=i) for i in range(5)])
    claimed = claim(store, 3, owner="w9")
    assert sorted(s.step_id for s in claimed) == ["s2", "s3", "s4"]
    for s in claimed:
        assert s.state == "executing"
        assert s.lease_owner == "w9"
        assert s.lease_expires == NOW + LEASE
        assert s.lease_token == 1
        assert s.started_at == NOW
        assert step(store, s.step_id) == s
    assert sorted(s.step_id for s in claim(store, 10)) == ["s0", "s1"]


def test_claim_skips_excluded_playbooks_and_queues(store: Store) -> None:
    seed(
        store,
        make_step("a", playbook="p1", queue="q1"),
        make_step("b", playbook="p2", queue="q1"),
        make_step("c", playbook="p1", queue="q2"),
        make_step("d", playbook="p3", queue="q3"),
    )
    got = claim(store, 10, exclude_playbooks=["p1"], exclude_queues=["q3"])
    assert [s.step_id for s in got] == ["b"]
    got = claim(store, 10, exclude_playbooks=["p1", "p3"])
    assert got == []
    assert sorted(s.step_id for s in claim(store, 10, exclude_queues=[])) == ["a", "c", "d"]


def test_claim_leaves_future_and_unready_steps(store: Store) -> None:
    seed(
        store,
        make_step("future", available_at=NOW + 1),
        make_step("scheduled", state="scheduled", pending_needs=1),
        make_step("due", available_at=NOW),
    )
    assert [s.step_id for s in claim(store)] == ["due"]
    assert [s.step_id for s in claim(store, now=NOW + 1)] == ["future"]
    with store.read() as tx:
        assert tx.steps.next_available() is None


def test_claim_of_a_dispatch_resume_goes_to_persisting(store: Store) -> None:
    seed(store, make_step("a"))
    a = step(store, "a")
    with store.transaction() as tx:
        assert tx.steps.set_state(a.id, "ready", expect=["ready"], resume="dispatch")
    [claimed] = claim(store)
    assert (claimed.state, claimed.resume) == ("persisting", "dispatch")


def test_next_available_and_leased_counts(store: Store) -> None:
    seed(
        store,
        make_step("a", playbook="p1", queue="q1", available_at=NOW + 50),
        make_step("b", playbook="p1", queue="q2", available_at=NOW + 20),
        make_step("c", playbook="p2", queue="q1", available_at=NOW + 20),
        make_step("d", playbook="p2", queue="q1", available_at=NOW + 30),
    )
    with store.read() as tx:
        assert tx.steps.next_available() == NOW + 20
        assert tx.steps.leased_counts() == ({}, {})
    with store.transaction() as tx:
        tx.steps.lock_for_limits()
        claimed = tx.steps.claim("w1", NOW + 40, LEASE, 10)
    assert len(claimed) == 3
    with store.read() as tx:
        assert tx.steps.next_available() == NOW + 50
        assert tx.steps.leased_counts() == ({"p1": 1, "p2": 2}, {"q1": 2, "q2": 1})


def test_update_fenced_refuses_a_stale_token(store: Store) -> None:
    seed(store, make_step("a"), make_step("b", position=1))
    a, b = sorted(claim(store), key=lambda s: s.step_id)
    with store.transaction() as tx:
        refused = tx.steps.update_fenced([
            StepUpdate(id=a.id, lease_token=a.lease_token - 1, state="done", output={"v": 0}),
            StepUpdate(id=b.id, lease_token=b.lease_token, state="done", output={"v": 2},
                       finished_at=NOW + 1),
        ])
    assert refused == [a.id]
    done = step(store, "b")
    assert (done.state, done.output, done.lease_owner, done.lease_expires) == (
        "done", {"v": 2}, None, None)
    assert done.finished_at == NOW + 1
    assert step(store, "a").state == "executing"
    # Once the lease is gone, even the right token is refused.
    with store.transaction() as tx:
        again = StepUpdate(id=b.id, lease_token=b.lease_token, state="failed")
        assert tx.steps.update_fenced([again]) == [b.id]


def test_update_fenced_can_keep_the_lease(store: Store) -> None:
    seed(store, make_step("a"))
    [a] = claim(store)
    with store.transaction() as tx:
        update = StepUpdate(id=a.id, lease_token=a.lease_token, state="persisting",
                            output=[1, "two"], resume="dispatch", keep_lease=True)
        assert tx.steps.update_fenced([update]) == []
    kept = step(store, "a")
    assert (kept.state, kept.resume, kept.output) == ("persisting", "dispatch", [1, "two"])
    assert (kept.lease_owner, kept.lease_expires, kept.lease_token) == (
        "w1", a.lease_expires, a.lease_token)
    with store.transaction() as tx:
        retry = StepUpdate(id=a.id, lease_token=a.lease_token, state="ready", error="later",
                           attempt=2, available_at=NOW + 9)
        assert tx.steps.update_fenced([retry]) == []
    back = step(store, "a")
    assert (back.state, back.error, back.attempt, back.available_at, back.output) == (
        "ready", "later", 2, NOW + 9, [1, "two"])
    assert back.lease_owner is None


def test_heartbeat_extends_only_the_owners_leases(store: Store) -> None:
    seed(store, make_step("a"), make_step("b", position=1), make_step("c", position=2))
    mine = claim(store, 2, owner="w1")
    [theirs] = claim(store, 1, owner="w2")
    with store.transaction() as tx:
        assert tx.steps.heartbeat("w1", [s.id for s in mine] + [theirs.id], NOW + 99) == 2
        assert tx.steps.heartbeat("w1", [], NOW + 99) == 0
    for s in mine:
        assert step(store, s.step_id).lease_expires == NOW + 99
    assert step(store, theirs.step_id).lease_expires == NOW + LEASE


def test_expired_leases_are_released_with_the_next_attempt(store: Store) -> None:
    seed(store, make_step("exec"), make_step("persist", position=1))
    with store.transaction() as tx:
        tx.steps.set_state(step(store, "persist").id, "ready", expect=["ready"],
                           resume="dispatch")
    claim(store, 10)
    with store.read() as tx:
        assert tx.steps.expired(NOW + LEASE, 10) == []  # not yet: strictly before now
        expired = tx.steps.expired(NOW + LEASE + 1, 10)
        assert len(tx.steps.expired(NOW + LEASE + 1, 1)) == 1
    assert sorted(s.step_id for s in expired) == ["exec", "persist"]
    with store.transaction() as tx:
        assert all(tx.steps.release_expired(s, NOW + 40) for s in expired)
        # A second release of the same lease is refused: the lease is gone.
        assert not tx.steps.release_expired(expired[0], NOW + 40)
    for name, resume in (("exec", "execute"), ("persist", "dispatch")):
        s = step(store, name)
        assert (s.state, s.attempt, s.resume, s.available_at) == ("ready", 2, resume, NOW + 40)
        assert (s.lease_owner, s.lease_expires) == (None, None)
    # The next claim gets a new token: the old holder's writes are now refused.
    reclaimed = claim(store, 10, now=NOW + 40)
    assert {s.lease_token for s in reclaimed} == {2}
    with store.transaction() as tx:
        stale = [StepUpdate(id=s.id, lease_token=1, state="done") for s in reclaimed]
        assert sorted(tx.steps.update_fenced(stale)) == sorted(s.id for s in reclaimed)


def test_release_expired_refuses_a_reclaimed_step(store: Store) -> None:
    seed(store, make_step("a"))
    [first] = claim(store)
    with store.transaction() as tx:
        assert tx.steps.release_expired(first, NOW + 100)
    claim(store, now=NOW + 100)
    with store.transaction() as tx:
        assert not tx.steps.release_expired(first, NOW + 200)
    assert step(store, "a").lease_token == 2


def test_promote_returns_only_the_steps_that_became_ready(store: Store) -> None:
    seed(
        store,
        make_step("root", state="done"),
        make_step("one", state="scheduled", pending_needs=1, available_at=NOW + 1000),
        make_step("two", state="scheduled", pending_needs=2, available_at=NOW + 1000),
        make_step("gone", state="cancelled", pending_needs=1, available_at=NOW + 1000),
    )
    with store.transaction() as tx:
        assert tx.steps.promote("r1", [], NOW) == []
        assert sorted(tx.steps.promote("r1", ["one", "two", "gone"], NOW + 5)) == ["one"]
    one, two, gone = step(store, "one"), step(store, "two"), step(store, "gone")
    assert (one.state, one.pending_needs, one.available_at) == ("ready", 0, NOW + 5)
    assert (two.state, two.pending_needs, two.available_at) == ("scheduled", 1, NOW + 1000)
    assert (gone.state, gone.pending_needs) == ("cancelled", 0)
    with store.transaction() as tx:
        assert tx.steps.promote("r1", ["two"], NOW + 7) == ["two"]
        assert tx.steps.promote("other-run", ["two"], NOW + 7) == []
    assert step(store, "two").available_at == NOW + 7


def test_outputs_of_done_steps_by_run(store: Store) -> None:
    seed(store, make_step("a"), make_step("b", position=1), make_step("a", run_id="r2"))
    for s in claim(store, 10):
        if (s.run_id, s.step_id) != ("r1", "b"):
            with store.transaction() as tx:
                out = {"run": s.run_id, "step": s.step_id}
                tx.steps.update_fenced([StepUpdate(id=s.id, lease_token=s.lease_token,
                                                   state="done", output=out)])
    with store.read() as tx:
        assert tx.steps.outputs([]) == {}
        assert tx.steps.outputs(["r1", "r2", "r3"]) == {
            "r1": {"a": {"run": "r1", "step": "a"}},
            "r2": {"a": {"run": "r2", "step": "a"}},
            "r3": {},
        }


def test_step_set_state_only_from_expected_states(store: Store) -> None:
    seed(store, make_step("a"))
    a = step(store, "a")
    with store.transaction() as tx:
        assert not tx.steps.set_state(a.id, "failed", expect=["executing"])
        assert tx.steps.set_state(a.id, "waiting", expect=["ready", "scheduled"],
                                  guidance="ask Ann", attempt=3, available_at=NOW + 1)
        assert tx.steps.set_state(a.id, "failed", expect=["waiting"], error="no",
                                  finished_at=NOW + 2)
    got = step(store, "a")
    assert (got.state, got.guidance, got.attempt, got.available_at, got.error,
            got.finished_at, got.resume) == (
        "failed", "ask Ann", 3, NOW + 1, "no", NOW + 2, "execute")


def test_cancel_open_cancels_and_revokes_leases(store: Store) -> None:
    seed(
        store,
        make_step("done", position=0),
        make_step("leased", position=1),
        make_step("waiting", position=2, state="scheduled", pending_needs=1),
    )
    seed(store, make_step("other", run_id="r2"))
    claimed = {s.step_id: s for s in claim(store, 10)}
    with store.transaction() as tx:
        d = claimed["done"]
        tx.steps.update_fenced([StepUpdate(id=d.id, lease_token=d.lease_token, state="done")])
    with store.transaction() as tx:
        cancelled = tx.steps.cancel_open("r1", NOW + 3)
    assert cancelled == [("leased", "executing"), ("waiting", "scheduled")]
    leased = step(store, "leased")
    assert (leased.state, leased.lease_owner, leased.finished_at) == ("cancelled", None, NOW + 3)
    assert leased.lease_token == claimed["leased"].lease_token + 1
    assert step(store, "done").state == "done"
    assert step(store, "other", "r2").state == "executing"
    with store.transaction() as tx:
        late = StepUpdate(id=leased.id, lease_token=claimed["leased"].lease_token, state="done")
        assert tx.steps.update_fenced([late]) == [leased.id]


# -- intents ---------------------------------------------------------------------------


def make_intent(idx: int, *, key: str | None = None, status: str = "staged",
                args: Any = None, step_id: str = "s") -> IntentRow:
    return IntentRow(
        run_id="r1", step_id=step_id, idx=idx, idempotency_key=key or f"r1/{step_id}/{idx}",
        tool="mail.send", args=args if args is not None else {"to": "a@b.c"},
        description="send a mail", status=status, result=None, error=None,
        created_at=NOW + idx, dispatched_at=None,
    )


def test_intents_upsert_only_while_staged_or_pending(store: Store) -> None:
    with store.transaction() as tx:
        tx.intents.insert_many([make_intent(0), make_intent(1), make_intent(0, step_id="t")])
    with store.transaction() as tx:
        tx.intents.insert_many([make_intent(0, args={"to": "new"}, status="pending")])
    with store.read() as tx:
        first = tx.intents.for_step("r1", "s")[0]
    assert (first.args, first.status) == ({"to": "new"}, "pending")
    with store.transaction() as tx:
        assert tx.intents.set_status("r1", "s", "dispatched", expect=["pending"]) == 1
        assert tx.intents.set_status("r1", "s", "failed", expect=["pending"]) == 0
        assert tx.intents.set_status("r1", "s", "pending", expect=["staged"]) == 1
    with store.transaction() as tx:
        # A dispatched intent is history: re-staging the step does not overwrite it.
        tx.intents.insert_many([make_intent(0, args={"to": "newer"}, status="staged"),
                                make_intent(1, args={"to": "b"}, status="staged")])
    with store.read() as tx:
        rows = tx.intents.for_step("r1", "s")
        assert [(i.idx, i.status, i.args) for i in rows] == [
            (0, "dispatched", {"to": "new"}), (1, "staged", {"to": "b"})]
        assert [(i.step_id, i.idx) for i in tx.intents.for_run("r1")] == [
            ("s", 0), ("t", 0), ("s", 1)]


def test_intent_result_is_recorded_by_idempotency_key(store: Store) -> None:
    with store.transaction() as tx:
        tx.intents.insert_many([make_intent(0, key="k0"), make_intent(1, key="k1")])
    with store.transaction() as tx:
        tx.intents.record_result("k1", "dispatched", {"id": 42}, None, NOW + 1)
        tx.intents.record_result("k0", "failed", None, "refused", NOW + 2)
        tx.intents.record_result("unknown", "dispatched", {}, None, NOW + 3)
    with store.read() as tx:
        k0, k1 = tx.intents.for_step("r1", "s")
    assert (k1.status, k1.result, k1.error, k1.dispatched_at) == (
        "dispatched", {"id": 42}, None, NOW + 1)
    assert (k0.status, k0.result, k0.error, k0.dispatched_at) == (
        "failed", None, "refused", NOW + 2)


def test_one_intent_is_found_and_marked_by_its_key(store: Store) -> None:
    with store.transaction() as tx:
        tx.intents.insert_many([make_intent(0, key="k0", status="pending"),
                                make_intent(1, key="k1", status="pending")])
    with store.transaction() as tx:
        assert tx.intents.mark("k0", "transmitting", expect=["pending"], now=NOW + 5)
        assert not tx.intents.mark("k0", "transmitting", expect=["pending"], now=NOW + 6)
        assert not tx.intents.mark("unknown", "transmitting", expect=["pending"], now=NOW)
    with store.read() as tx:
        k0, k1 = tx.intents.get("k0"), tx.intents.get("k1")
        assert tx.intents.get("unknown") is None
    assert k0 is not None and k1 is not None
    assert (k0.status, k0.dispatched_at, k0.idx) == ("transmitting", NOW + 5, 0)
    assert (k1.status, k1.dispatched_at) == ("pending", None)


def test_an_idempotency_key_is_unique(store: Store) -> None:
    with store.transaction() as tx:
        tx.intents.insert_many([make_intent(0, key="same")])
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.intents.insert_many([make_intent(1, key="same")])
    with store.read() as tx:
        assert [i.idx for i in tx.intents.for_run("r1")] == [0]


# -- approvals -------------------------------------------------------------------------


def make_approval(approval_id: str, *, run_id: str = "r1", created_at: float = NOW,
                  expires_at: float | None = None) -> ApprovalRow:
    return ApprovalRow(
        id=approval_id, run_id=run_id, step_id="s", attempt=1, reason="gate",
        message="ok to send?", created_at=created_at, expires_at=expires_at,
        default_decision="reject" if expires_at else None, decision=None, decided_by=None,
        decided_at=None, note=None,
    )


def test_approvals_open_decide_once_expire_and_close(store: Store) -> None:
    with store.transaction() as tx:
        tx.approvals.insert(make_approval("a1", created_at=NOW + 1))
        tx.approvals.insert(make_approval("a2", created_at=NOW + 2, expires_at=NOW + 10))
        tx.approvals.insert(make_approval("a3", created_at=NOW + 3, expires_at=NOW + 20))
        tx.approvals.insert(make_approval("b1", run_id="r2", created_at=NOW + 4))
    with store.read() as tx:
        assert tx.approvals.get("a2") == make_approval("a2", created_at=NOW + 2,
                                                       expires_at=NOW + 10)
        assert tx.approvals.get("zz") is None
        assert [a.id for a in tx.approvals.open()] == ["a1", "a2", "a3", "b1"]
        assert [a.id for a in tx.approvals.open(limit=2)] == ["a1", "a2"]
        assert [a.id for a in tx.approvals.expired(NOW + 15)] == ["a2"]
    with store.transaction() as tx:
        assert tx.approvals.decide("a1", "approve", "ann", "fine", NOW + 5)
        assert not tx.approvals.decide("a1", "reject", "bob", None, NOW + 6)
        assert not tx.approvals.decide("zz", "reject", "bob", None, NOW + 6)
    with store.read() as tx:
        a1 = tx.approvals.get("a1")
    assert a1 is not None
    assert (a1.decision, a1.decided_by, a1.note, a1.decided_at) == (
        "approve", "ann", "fine", NOW + 5)
    with store.transaction() as tx:
        assert tx.approvals.close_for_run("r1", "cancelled", "system", NOW + 7) == 2
        assert tx.approvals.close_for_run("r1", "cancelled", "system", NOW + 8) == 0
    with store.read() as tx:
        assert [(a.id, a.decision) for a in tx.approvals.for_run("r1")] == [
            ("a1", "approve"), ("a2", "cancelled"), ("a3", "cancelled")]
        assert [a.id for a in tx.approvals.open()] == ["b1"]
        assert tx.approvals.expired(NOW + 100) == []


# -- events ----------------------------------------------------------------------------


def test_events_are_chained_at_commit(store: Store) -> None:
    with store.transaction() as tx:
        tx.events.append(NewEvent(kind="run.created", data={"n": 1}, run_id="r1",
                                  actor="ann", ts=NOW))
        tx.events.extend([
            NewEvent(kind="step.started", data={"n": 2}, run_id="r1", step_id="s", ts=NOW),
            NewEvent(kind="other", data={"text": "100% naïve"}),
        ])
        assert tx.events.list() == []  # buffered until commit
    with store.transaction() as tx:
        tx.events.append(NewEvent(kind="run.done", data={}, run_id="r1"))
    events = all_events(store)
    assert [e.kind for e in events] == ["run.created", "step.started", "other", "run.done"]
    assert events[0].actor == "ann"
    assert events[2].ts > 0  # stamped at commit when not given
    assert_chained(events)
    with store.read() as tx:
        assert [e.seq for e in tx.events.list(run_id="r1")] == [1, 2, 4]
        assert [e.seq for e in tx.events.list(run_id="r1", after_seq=1, limit=1)] == [2]
        assert [e.seq for e in tx.events.list(after_seq=2)] == [3, 4]
        assert [e.seq for e in tx.events.scan(1, 2)] == [2, 3]



def test_events_of_one_kind_come_newest_first_and_page_on(store: Store) -> None:
    with store.transaction() as tx:
        tx.events.extend([NewEvent(kind=kind, data={"i": i}, ts=NOW) for i, kind in
                          enumerate(["approval.override", "approval.decided",
                                     "approval.override", "approval.overrides",
                                     "approval.override"])])
    with store.read() as tx:
        assert [e.seq for e in tx.events.of_kind("approval.override")] == [5, 3, 1]
        assert [e.seq for e in tx.events.of_kind("approval.override", limit=2)] == [5, 3]
        assert [e.seq for e in tx.events.of_kind("approval.override", before_seq=5)] == [3, 1]
        assert [e.data for e in tx.events.of_kind("approval.decided")] == [{"i": 1}]
        assert tx.events.of_kind("approval.%") == []  # exactly that kind, never a pattern

def test_a_rolled_back_transaction_writes_no_events(store: Store) -> None:
    with store.transaction() as tx:
        tx.events.append(NewEvent(kind="first", data={}))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.append(NewEvent(kind="lost", data={}))
        tx.runs.insert(make_run())
        raise RuntimeError("abandon")
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.events.append(NewEvent(kind="lost too", data={}))
        tx.registry.insert(make_definition("pb", 1))
        tx.registry.insert(make_definition("pb", 1))
    with store.transaction() as tx:
        tx.events.append(NewEvent(kind="second", data={}))
    events = all_events(store)
    assert [e.kind for e in events] == ["first", "second"]
    assert_chained(events)


def test_the_event_log_is_append_only(store: Store) -> None:
    with store.transaction() as tx:
        tx.events.append(NewEvent(kind="fact", data={"v": 1}))
    for sql in ("UPDATE events SET kind = 'forged'", "DELETE FROM events"):
        with pytest.raises(StoreError, match="append-only"), store.transaction() as tx:
            tx.events.conn.run(sql)  # type: ignore[attr-defined]
    assert [e.kind for e in all_events(store)] == ["fact"]


def test_concurrent_writers_keep_one_chain(store: Store,
                                           open_another: Callable[[], Store]) -> None:
    stores = [store, open_another()]
    errors: list[BaseException] = []

    def write(s: Store, name: str) -> None:
        try:
            for i in range(15):
                with s.transaction() as tx:
                    tx.events.extend([NewEvent(kind=name, data={"i": i, "j": j})
                                      for j in range(2)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, f"w{n}"))
               for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = all_events(store)
    assert len(events) == 60
    assert_chained(events)
    for n in range(2):  # each transaction's events stay together and in order
        mine = [e for e in events if e.kind == f"w{n}"]
        assert [(e.data["i"], e.data["j"]) for e in mine] == [
            (i, j) for i in range(15) for j in range(2)]


# -- registry --------------------------------------------------------------------------


def make_definition(name: str, version: int, kind: str = "playbook") -> DefinitionRow:
    return DefinitionRow(
        kind=kind, name=name, version=version, digest=f"sha:{name}:{version}",
        body={"name": name, "version": version}, source=f"name: {name}\n",
        deployed_by="ann", deployed_at=NOW + version, note=None if version == 1 else "fix",
    )


def test_registry_versions(store: Store) -> None:
    with store.transaction() as tx:
        for row in (make_definition("pb", 1), make_definition("pb", 2),
                    make_definition("other", 1), make_definition("bot", 3, kind="agent")):
            tx.registry.insert(row)
    with store.read() as tx:
        assert tx.registry.latest("playbook", "pb") == make_definition("pb", 2)
        assert tx.registry.latest("agent", "pb") is None
        assert tx.registry.get("playbook", "pb", 1) == make_definition("pb", 1)
        assert tx.registry.get("playbook", "pb", 3) is None
        assert [d.version for d in tx.registry.history("playbook", "pb")] == [1, 2]
        assert [(d.kind, d.name, d.version) for d in tx.registry.all_latest()] == [
            ("agent", "bot", 3), ("playbook", "other", 1), ("playbook", "pb", 2)]
        assert [d.name for d in tx.registry.all_latest("playbook")] == ["other", "pb"]
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.registry.insert(make_definition("pb", 2))


# -- bus -------------------------------------------------------------------------------


def test_bus_publish_pending_processed(store: Store) -> None:
    with store.transaction() as tx:
        for n in range(3):
            tx.bus.publish("orders", {"n": n}, "r1" if n else None, NOW + n)
    with store.read() as tx:
        pending = tx.bus.pending(10)
        assert [m.payload for m in tx.bus.pending(2)] == [{"n": 0}, {"n": 1}]
    assert [(m.topic, m.payload, m.run_id, m.created_at) for m in pending] == [
        ("orders", {"n": n}, "r1" if n else None, NOW + n) for n in range(3)]
    assert pending[0].id < pending[1].id < pending[2].id
    with store.transaction() as tx:
        tx.bus.mark_processed([pending[0].id, pending[2].id], NOW + 5)
        tx.bus.mark_processed([], NOW + 5)
    with store.read() as tx:
        assert [m.id for m in tx.bus.pending(10)] == [pending[1].id]


# -- scheduler -------------------------------------------------------------------------


def test_leadership_is_refused_until_it_expires(store: Store) -> None:
    with store.transaction() as tx:
        lead = tx.scheduler
        assert lead.try_lead("cron", "a", NOW, ttl=10)
        assert not lead.try_lead("cron", "b", NOW + 5, ttl=10)
        assert lead.try_lead("cron", "a", NOW + 5, ttl=10)  # renewed until NOW + 15
        assert not lead.try_lead("cron", "b", NOW + 12, ttl=10)
        assert lead.try_lead("other", "b", NOW + 12, ttl=10)
        assert lead.try_lead("cron", "b", NOW + 16, ttl=10)
        assert not lead.try_lead("cron", "a", NOW + 17, ttl=10)
        lead.resign("cron", "a")  # not the owner: no effect
        assert not lead.try_lead("cron", "a", NOW + 18, ttl=10)
        lead.resign("cron", "b")
        assert lead.try_lead("cron", "a", NOW + 18, ttl=10)


def test_cron_state_and_workers(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.scheduler.cron_last("pb", 0) is None
        tx.scheduler.cron_set("pb", 0, NOW)
        tx.scheduler.cron_set("pb", 1, NOW + 1)
        tx.scheduler.cron_set("pb", 0, NOW + 60)
        tx.scheduler.worker_seen("w1", {"host": "a", "slots": 4}, NOW)
        tx.scheduler.worker_seen("w2", {"host": "b"}, NOW - 100)
        tx.scheduler.worker_seen("w1", {"host": "a", "slots": 8}, NOW + 1)
    with store.read() as tx:
        assert tx.scheduler.cron_last("pb", 0) == NOW + 60
        assert tx.scheduler.cron_last("pb", 1) == NOW + 1
        assert tx.scheduler.workers(NOW - 10) == [
            {"id": "w1", "heartbeat_at": NOW + 1, "started_at": None, "version": None,
             "drain_requested_at": None, "host": "a", "slots": 8}]
        assert [w["id"] for w in tx.scheduler.workers(0)] == ["w1", "w2"]


def test_one_scheduler_per_database(store: Store, open_another: Callable[[], Store]) -> None:
    other = open_another()
    assert store.try_scheduler_lock("one")
    assert store.try_scheduler_lock("one")  # still held
    assert not other.try_scheduler_lock("two")
    store.release_scheduler_lock("two")  # not the holder: no effect
    assert not other.try_scheduler_lock("two")
    store.release_scheduler_lock("one")
    assert other.try_scheduler_lock("two")
    assert not store.try_scheduler_lock("one")
    other.release_scheduler_lock("two")


# -- wake-ups --------------------------------------------------------------------------


def test_a_commit_that_readies_steps_wakes_listeners(
    store: Store, open_another: Callable[[], Store]
) -> None:
    here, elsewhere = threading.Event(), threading.Event()
    store.add_listener(here.set)
    listeners = [store]
    if not store.polls:  # then other processes must be woken too
        other = open_another()
        other.add_listener(elsewhere.set)
        listeners.append(other)
    with store.transaction() as tx:
        tx.runs.insert(make_run())  # no notify_ready: nobody is woken
    assert not here.wait(0.3)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.steps.insert_many([make_step("s1")])
        tx.notify_ready()
        raise RuntimeError("rolled back: nobody is woken")
    assert not here.wait(0.3)
    with store.transaction() as tx:
        tx.steps.insert_many([make_step("s1")])
        tx.notify_ready()
    assert here.wait(5)
    if not store.polls:
        assert elsewhere.wait(5)
    for s in listeners:
        s.remove_listener(here.set)
        s.remove_listener(elsewhere.set)


def test_a_commit_that_claims_what_it_readied_wakes_no_other_process(
    store: Store, open_another: Callable[[], Store]
) -> None:
    """Below full load a worker claims the next step in the transaction that readied it:
    waking every other worker for it would only make each run a claim that finds nothing."""
    if store.polls:
        pytest.skip("SQLite wakes only listeners of this process; nothing to spare there")
    seed(store, make_step("a"), make_step("b", position=1, state="scheduled",
                                          pending_needs=1))
    [first] = claim(store, 1)
    other = open_another()
    woken = threading.Event()
    other.add_listener(woken.set)
    try:
        with store.transaction() as tx:  # finish a, ready b, claim b, in one transaction
            tx.steps.set_state(first.id, "done", expect=["executing"])
            assert tx.steps.promote("r1", ["b"], NOW) == ["b"]
            tx.notify_ready()
            assert [s.step_id for s in tx.steps.claim("w1", NOW, LEASE, 10)] == ["b"]
        assert not woken.wait(0.5)
        seed(store, make_step("c", position=2))  # left ready: the others are woken
        with store.transaction() as tx:
            tx.notify_ready()
        assert woken.wait(5)
    finally:
        other.remove_listener(woken.set)


# -- concurrency -----------------------------------------------------------------------


def test_concurrent_claims_never_share_a_step(
    store: Store, open_another: Callable[[], Store]
) -> None:
    seed(store, *[make_step(f"s{i:03d}", position=i, priority=i % 3) for i in range(200)])
    stores = [store, open_another()]
    claimed: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(n: int) -> None:
        try:
            start.wait()
            while True:
                with stores[n].transaction() as tx:
                    batch = tx.steps.claim(f"w{n}", NOW, LEASE, 7)
                if not batch:
                    return
                claimed[n].extend(s.id for s in batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    union = claimed[0] + claimed[1]
    assert len(union) == len(set(union)) == 200
    with store.read() as tx:
        assert all(s.lease_token == 1 for s in tx.steps.for_run("r1"))


# -- failures --------------------------------------------------------------------------


def test_an_unreachable_postgres_is_store_unavailable() -> None:
    pytest.importorskip("psycopg")
    from soloist.store import open_store

    port = closed_port()
    with pytest.raises(StoreUnavailable) as caught:
        open_store(f"postgresql://soloist:s3cret@127.0.0.1:{port}/soloist?connect_timeout=2")
    message = caught.value.message
    assert f"127.0.0.1:{port}/soloist" in message
    assert "s3cret" not in message
    assert caught.value.__cause__ is not None



def test_an_invalid_postgres_url_is_a_config_error() -> None:
    pytest.importorskip("psycopg")
    from soloist.store import open_store

    with pytest.raises(ConfigError) as caught:
        open_store("postgresql://soloist:s3cret@127.0.0.1:5432/db?nonsense=1")
    assert "s3cret" not in caught.value.message
