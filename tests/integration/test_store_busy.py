"""A store that is busy is a transient failure: the step retries instead of failing for good.

A step's memory write is an intent, dispatched by the worker after the step ran; here
another connection holds SQLite's write lock when that dispatch writes. The store's busy
timeout is lowered (``?busy_timeout_ms=``) so the write gives up quickly; the lock is let go
a moment later, and the retry writes the fact once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import StoreConflict, StoreUnavailable, classify
from soloist.workspace import Workspace

HOLD_SECONDS = 1.0  # far longer than the busy timeout below, far shorter than a lease
BUSY_TIMEOUT_MS = 50

TASKS = '''
import sqlite3
import threading
import time
from pathlib import Path

from soloist.execution.context import ToolCall
from soloist.execution.tools.base import tool


def remember(ctx, plan):
    ctx.stage("lock.hold", {"seconds": HOLD})
    ctx.stage("memory.put", {"namespace": "customers", "subject": "acme", "key": "plan",
                             "value": plan, "reason": "signed"})
    return {"staged": 2}


@tool("lock.hold", effect="write")
def lock_hold(seconds: float, call: ToolCall) -> dict:
    """Take the store's write lock on a connection of its own; let it go after a while."""
    root = Path(call.workspace)
    holder = sqlite3.connect(root / ".soloist" / "state.db", isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    with open(root / "held.txt", "a") as log:
        log.write("held\\n")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("ROLLBACK")
        holder.close()

    threading.Thread(target=release, daemon=True).start()
    return {"held": seconds}
'''

PLAYBOOKS = {"remember": """
name: remember
steps:
  - id: s
    python: "tasks:remember"
    args: {plan: pro}
    retry: {max_attempts: 5, backoff: 0.05, jitter: 0}
"""}


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS,
                           TASKS.replace("HOLD", repr(HOLD_SECONDS)),
                           toml='[tools]\nmodules = ["tasks"]\n')
    url = f"sqlite:///{root / '.soloist' / 'state.db'}?busy_timeout_ms={BUSY_TIMEOUT_MS}"
    with Workspace(root, database_url=url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def test_a_memory_write_that_meets_a_held_lock_is_retried_and_the_run_finishes(
        ws: Workspace) -> None:
    run_id = ws.start("remember")
    ws.worker(concurrency=1).run(until_idle=True)

    assert ws.get_run(run_id).state == "done"
    retries = [e.data for e in ws.log(run_id=run_id)
               if e.kind == "step.transition" and e.data.get("to") == "ready"
               and e.data.get("from") == "persisting"]
    assert len(retries) == 1
    assert retries[0]["kind"] == "transient"
    assert "stayed locked (SQLITE_BUSY)" in str(retries[0]["error"])
    # Written once, by the retry; the lock was taken once (a dispatched intent is not redone).
    history = ws.memory.history("customers", "acme", "plan")
    assert [(h.version, h.value) for h in history] == [(1, "pro")]
    assert (ws.root / "held.txt").read_text() == "held\n"


def test_a_locked_database_is_a_transient_store_conflict(tmp_path: Path) -> None:
    from soloist.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}?busy_timeout_ms={BUSY_TIMEOUT_MS}")
    holder = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreConflict) as caught, store.transaction() as tx:
            tx.scheduler.worker_gone("nobody")
        assert isinstance(caught.value, StoreUnavailable)
        assert classify(caught.value) == "transient"
        holder.execute("ROLLBACK")
        with store.transaction() as tx:  # the lock let go: the same write goes through
            tx.scheduler.worker_gone("nobody")
    finally:
        holder.close()
        store.close()
