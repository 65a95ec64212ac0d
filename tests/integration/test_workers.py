"""``ws.workers()`` and ``ws.drain_worker()``: a worker asked to drain finishes the steps
in its hands, claims nothing more and stops; in ``soloist up`` the scheduler stops too."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.workspaces import HOLD_TASKS, write_workspace

from soloist.control.processes import Presence
from soloist.errors import InputError, NotFound
from soloist.orchestration.supervisor import Supervisor
from soloist.orchestration.worker import Worker
from soloist.workspace import Workspace

PLAYBOOK = """
name: slow
inputs: {type: object, properties: {gate: {type: string}}}
steps:
  - {id: a, python: "tasks:hold", args: {gate: "{{ inputs.gate }}"}}
  - {id: b, python: "tasks:hold", args: {gate: "{{ inputs.gate }}"}, needs: [a]}
"""
TASKS = HOLD_TASKS


def until(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"slow": PLAYBOOK}, TASKS,
                           "[worker]\nlease_seconds = 6\n")
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def drain_log(caplog: pytest.LogCaptureFixture, worker: Worker, words: str) -> int:
    return sum(1 for r in caplog.records if worker.id in r.getMessage() and
               words in r.getMessage())


def test_a_drained_worker_finishes_its_steps_claims_no_more_and_stops(
        ws: Workspace, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "soloist.orchestration.worker")
    gate = tmp_path / "open"
    runs = [ws.start("slow", {"gate": str(gate)}) for _ in range(3)]
    worker = ws.worker(concurrency=2)
    thread = threading.Thread(target=worker.run, daemon=True)
    try:
        thread.start()
        until(lambda: [w.steps_in_hand for w in ws.workers()] == [2], "two steps in hand")
        [listed] = ws.workers()
        assert listed.id == worker.id and listed.pid is not None and listed.host
        assert listed.version and listed.started_at and not listed.draining
        asked = ws.drain_worker(worker.id.rsplit(":", 1)[0])  # a prefix is enough
        assert asked.id == worker.id and asked.draining
        assert [w.draining for w in ws.workers()] == [True]
        until(lambda: drain_log(caplog, worker, "asked to drain") == 1, "the drain seen")
        gate.touch()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        gate.touch()
        worker.stop()
        thread.join(60)
    assert drain_log(caplog, worker, "drained") == 1
    assert ws.workers() == []  # its row is gone
    states = sorted(tuple(s.state for s in ws.show(r).steps) for r in runs)
    # The two steps in hand finished; nothing after them was claimed.
    assert states == [("done", "ready"), ("done", "ready"), ("ready", "scheduled")]
    moves = [e for e in ws.log(limit=10_000) if e.kind == "step.transition"]
    assert not [e for e in moves if e.actor == worker.id and e.data["to"] == "ready"]
    [event] = [e for e in ws.log(limit=10_000) if e.kind == "worker.drain"]
    assert event.actor == "person:" + ws.settings.actor
    assert event.data["worker"] == worker.id
    ws.worker().run(until_idle=True)  # another worker carries on
    assert [ws.get_run(r).state for r in runs] == ["done"] * 3


def test_a_draining_up_stops_its_scheduler_too(ws: Workspace) -> None:
    assert threading.current_thread() is threading.main_thread(), "signals need it"
    worker = ws.worker(concurrency=1)
    scheduler = ws.scheduler(worker.id)
    supervisor = Supervisor(worker, scheduler)
    asked: list[str] = []

    def ask() -> None:
        until(lambda: bool(ws.workers()), "the worker's row")
        asked.append(ws.drain_worker(worker.id).id)

    helper = threading.Thread(target=ask, daemon=True)
    helper.start()
    supervisor.run()  # returns once the worker drained, as after SIGTERM
    helper.join(10)
    assert asked == [worker.id]
    with ws.store.read() as tx:
        assert tx.scheduler.workers(0) == []  # worker and scheduler left their rows


def test_drain_names_one_live_worker_or_says_why_not(ws: Workspace) -> None:
    for name in ("hostA:11:aa01", "hostA:11:aa02", "hostB:7:ff00"):
        Presence(ws.store, name, "worker", 30.0).beat()
    Presence(ws.store, "hostA:11:aa01/scheduler", "scheduler", 15.0).beat()
    assert [w.id for w in ws.workers()] == ["hostA:11:aa01", "hostA:11:aa02", "hostB:7:ff00"]
    with pytest.raises(InputError, match=r"matches 2 workers: hostA:11:aa01, hostA:11:aa02"):
        ws.drain_worker("hostA")
    with pytest.raises(NotFound, match="no live worker has an id starting with 'nope'"):
        ws.drain_worker("nope")
    with pytest.raises(InputError):
        ws.drain_worker("")
    with pytest.raises(InputError):
        ws.drain_worker("x" * 10_000)
    assert ws.drain_worker("hostA:11:aa01").id == "hostA:11:aa01"  # exact beats prefix
    assert ws.drain_worker("hostB").id == "hostB:7:ff00"
    gone = Presence(ws.store, "hostC:1:0000", "worker", 30.0)
    gone.beat()
    gone.leave()
    with pytest.raises(NotFound):
        ws.drain_worker("hostC")
    assert [w.draining for w in ws.workers()] == [True, False, True]
    for n in range(12):
        Presence(ws.store, f"hostD:{n}:0000", "worker", 30.0).beat()
    with pytest.raises(InputError, match=r"matches 12 workers: hostD:0:0000, .* and 2 more;"):
        ws.drain_worker("hostD")
    assert not [e for e in ws.log(limit=1000) if e.kind == "worker.drain"
                and e.data["worker"] not in ("hostA:11:aa01", "hostB:7:ff00")]
