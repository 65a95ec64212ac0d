"""The supervisor: a worker and the scheduler in one process until SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.orchestration.supervisor import Supervisor
from soloist.workspace import Workspace

FIRST = """
name: first
steps:
  - {id: a, tool: note, args: {text: "first {{ inputs.n }}"}}
"""
FOLLOW = """
name: follow
triggers:
  - event: run.completed.first
    inputs: {n: "{{ event.payload.inputs.n }}"}
steps:
  - {id: b, tool: note, args: {text: "after {{ inputs.n }}"}}
"""


@pytest.fixture(autouse=True)
def _main_thread_only() -> Iterator[None]:
    assert threading.current_thread() is threading.main_thread(), "signals need it"
    yield


@pytest.fixture
def root(tmp_path: Path, db_url: str) -> Path:
    root = write_workspace(tmp_path / "ws", {"first": FIRST, "follow": FOLLOW})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
    return root


def in_other_thread(supervisor: Supervisor, signum: int,
                    work: Callable[[], None]) -> threading.Thread:
    """Do ``work`` beside the supervisor, then signal this process, whatever happened
    (but only once the supervisor catches the signal: before, it would stop pytest)."""
    def body() -> None:
        try:
            work()
        finally:
            if supervisor.ready.wait(60):
                os.kill(os.getpid(), signum)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def follow_runs(ws: Workspace) -> list[str]:
    return [r.state for r in ws.runs(playbook="follow")]


def test_sigterm_stops_the_worker_and_scheduler_after_they_ran_a_chain(
        root: Path, db_url: str) -> None:
    outcome: dict[str, object] = {}

    def client() -> None:
        # A second workspace object, as another process would hold.
        with Workspace(root, database_url=db_url) as other:
            run_id = other.start("first", {"n": 7}, actor="person:test")
            outcome["first"] = other.wait(run_id, timeout=60).state
            deadline = time.time() + 60  # only so that a broken scheduler cannot hang us
            while time.time() < deadline and follow_runs(other) != ["done"]:
                time.sleep(0.05)
            outcome["follow"] = follow_runs(other)

    before = signal.getsignal(signal.SIGTERM)
    with Workspace(root, database_url=db_url) as ws:
        worker = ws.worker(concurrency=2)
        scheduler = ws.scheduler(worker.id)
        supervisor = Supervisor(worker, scheduler)
        helper = in_other_thread(supervisor, signal.SIGTERM, client)
        supervisor.run()
        helper.join()
        assert outcome == {"first": "done", "follow": ["done"]}
        assert worker.stop_event.is_set() and scheduler.stop_event.is_set()
        assert worker.completed and not worker.refused and not worker.inflight
    assert signal.getsignal(signal.SIGTERM) is before  # the process's own handler is back


def test_sigint_stops_a_scheduler_alone_without_a_keyboard_interrupt(
        root: Path, db_url: str) -> None:
    before = signal.getsignal(signal.SIGINT)
    with Workspace(root, database_url=db_url) as ws:
        scheduler = ws.scheduler()
        supervisor = Supervisor(None, scheduler)
        helper = in_other_thread(supervisor, signal.SIGINT, lambda: None)
        supervisor.run()
        helper.join()
        assert supervisor.stopped.is_set() and scheduler.stop_event.is_set()
    assert signal.getsignal(signal.SIGINT) is before
