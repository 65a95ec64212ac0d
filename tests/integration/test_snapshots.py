"""Snapshots: take one while work goes on, restore it, find everything as it was."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import InvalidState, NotFound
from soloist.memory.facts import Cause
from soloist.workspace import Workspace

PLAYBOOKS = {"two": """
name: two
steps:
  - {id: a, tool: note, args: {text: "a"}}
  - {id: b, tool: note, args: {text: "b"}}
"""}


def test_restore_brings_back_facts_and_runs(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        first = ws.start("two")
        ws.worker().run(until_idle=True)
        ws.memory.put("customers", "acme", "plan", "pro", Cause("person:a", "signed"))
        snap = ws.snapshots.create("person:a", "before")
        assert snap.size_bytes > 0 and [s.name for s in ws.snapshots.list()] == ["before"]
        ws.memory.put("customers", "acme", "plan", "free", Cause("agent:x", "mistake"))
        second = ws.start("two")
        ws.worker().run(until_idle=True)
        with pytest.raises(InvalidState, match="exists"):
            ws.snapshots.create("person:a", "before")
        ws.snapshots.restore("before", "person:a")
        fact = ws.memory.get("customers", "acme", "plan")
        assert fact is not None and fact.value == "pro"
        assert [r.id for r in ws.runs()] == [first]
        with pytest.raises(NotFound):
            ws.get_run(second)
        assert ws.verify().ok
        kinds = [e.kind for e in ws.log()][-2:]
        assert kinds == ["snapshot.created", "snapshot.restored"]
        with pytest.raises(NotFound, match="no snapshot named 'nope'"):
            ws.snapshots.restore("nope", "person:a")


def test_restore_refuses_while_workers_hold_leases(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ws.snapshots.create("person:a", "empty")
        ws.start("two")
        with ws.store.transaction() as tx:
            tx.steps.claim("busy-worker", time.time(), 60.0, 1)
        with pytest.raises(InvalidState, match="held by running workers"):
            ws.snapshots.restore("empty", "person:a")
        ws.snapshots.restore("empty", "person:a", force=True)
        assert ws.runs() == []
