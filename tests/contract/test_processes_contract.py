"""The process registry's start, version and drain requests, and the steps each worker
holds: the same on every backend."""

from __future__ import annotations

from collections.abc import Callable

from soloist.store.base import NewStep, RunRow, Store

NOW = 1_000_000.0


def test_a_process_keeps_its_start_and_version_across_beats(store: Store) -> None:
    with store.transaction() as tx:
        tx.scheduler.worker_seen("w1", {"host": "a"}, NOW, started_at=NOW - 5, version="1.2")
        tx.scheduler.worker_seen("w1", {"host": "a", "pid": 7}, NOW + 10)
        tx.scheduler.worker_seen("w2", {"host": "b"}, NOW)
    with store.read() as tx:
        first, second = tx.scheduler.workers(0)
    assert first == {"id": "w1", "heartbeat_at": NOW + 10, "started_at": NOW - 5,
                     "version": "1.2", "drain_requested_at": None, "host": "a", "pid": 7}
    assert (second["id"], second["started_at"], second["version"]) == ("w2", None, None)


def test_a_drain_request_is_kept_until_the_process_leaves(
        store: Store, open_another: Callable[[], Store]) -> None:
    with store.transaction() as tx:
        tx.scheduler.worker_seen("w1", {}, NOW, started_at=NOW, version="1")
        tx.scheduler.worker_seen("w2", {}, NOW, started_at=NOW, version="1")
        assert not tx.scheduler.drain_requested("w1")
    with open_another().transaction() as tx:  # asked from another process
        assert tx.scheduler.request_drain("w1", NOW + 1)
        assert tx.scheduler.request_drain("w1", NOW + 2)  # asked twice: the first time kept
        assert not tx.scheduler.request_drain("nobody", NOW + 1)
    with store.transaction() as tx:
        tx.scheduler.worker_seen("w1", {"beat": 2}, NOW + 3)  # a beat does not clear it
    with store.read() as tx:
        assert tx.scheduler.drain_requested("w1")
        assert not tx.scheduler.drain_requested("w2")
        assert not tx.scheduler.drain_requested("nobody")
        assert [w["drain_requested_at"] for w in tx.scheduler.workers(0)] == [NOW + 1, None]
    with store.transaction() as tx:
        tx.scheduler.worker_gone("w1")
        tx.scheduler.worker_seen("w1", {}, NOW + 4)  # the same id back: a fresh row
    with store.read() as tx:
        assert not tx.scheduler.drain_requested("w1")


def test_steps_in_hand_are_counted_per_lease_owner(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(RunRow(id="r1", playbook="p", playbook_version=1, state="running",
                              inputs={}, queue="default", priority=0, created_at=NOW,
                              deadline_at=None, finished_at=None, trigger={}, error=None,
                              steps_remaining=4, created_by="tester"))
        tx.steps.insert_many([NewStep("r1", f"s{i}", i, "step", "p", 1, "default", 0, "ready",
                                      0, NOW, NOW) for i in range(4)])
        assert tx.steps.leased_by_owner() == {}
        tx.steps.claim("w1", NOW, 30.0, 2)
        tx.steps.claim("w2", NOW, 30.0, 1)
    with store.read() as tx:
        assert tx.steps.leased_by_owner() == {"w1": 2, "w2": 1}


def test_the_migration_runs_again_as_after_restoring_an_older_snapshot(
        store: Store, open_another: Callable[[], Store]) -> None:
    with store.transaction() as tx:
        tx.scheduler.worker_seen("w1", {"host": "a"}, NOW, started_at=NOW, version="1")
        tx.events.conn.run(  # type: ignore[attr-defined]
            "DELETE FROM schema_migrations WHERE version = 80")
    again = open_another()  # migrates 0080 once more
    with again.transaction() as tx:
        assert [w["id"] for w in tx.scheduler.workers(0)] == ["w1"]
        assert tx.scheduler.request_drain("w1", NOW + 1)
        tx.scheduler.worker_seen("w2", {}, NOW, started_at=NOW, version="1")
    with again.read() as tx:
        rows = tx.scheduler.workers(0)
    assert [(w["id"], w["heartbeat_at"]) for w in rows] == [("w1", NOW), ("w2", NOW)]
    assert rows[0]["drain_requested_at"] == NOW + 1 and rows[1]["version"] == "1"
