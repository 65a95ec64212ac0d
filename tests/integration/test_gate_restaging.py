"""A step sent back from its gate with guidance stages its intents anew, and what the
person approves then is what goes out (the intents of the first attempt never do)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.runs import drain
from support.workspaces import write_workspace

from soloist.workspace import Workspace

TASKS = '''
def stage(ctx, line):
    ctx.stage("file.append", {"path": "effects.txt", "line": line + (ctx.guidance or "")})
    return {"staged": line}
'''
PLAYBOOK = """
name: drafted
steps:
  - id: draft
    python: tasks:stage
    args: {line: hello}
    gate: {message: "Send it?"}
"""


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"drafted": PLAYBOOK}, TASKS)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


def test_retry_with_guidance_stages_anew_and_the_new_intent_goes_out(ws: Workspace) -> None:
    run_id = ws.start("drafted")
    ws.worker().run(until_idle=True)
    [first] = ws.approvals()
    assert [i.args["line"] for i in first.intents] == ["hello"]
    ws.retry(first.approval.id, " world")
    ws.worker().run(until_idle=True)
    [second] = ws.approvals()
    assert [(i.status, i.args["line"]) for i in second.intents] == [("staged", "hello world")]
    ws.approve(second.approval.id)
    drain(ws, run_id)
    lines = (ws.root / "effects.txt").read_text().splitlines()
    assert [line.split("\t", 1)[1] for line in lines] == ["hello world"]
