"""A gate's message is one line whatever its template and its data, on SQLite and PostgreSQL.

The message is what every interface shows above the intents a person approves, so the one
stored (and logged in ``approval.requested``) has the template's own line breaks folded and
every active character from data escaped: no interface can be made to show a forged line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.workspace import Workspace

TASKS = '''
from soloist.errors import SemanticError

def stage(ctx, who, amount):
    ctx.stage("file.append", {"path": "sent.txt", "line": f"{who} {amount}"})
    return {"who": who}

def doubt(ctx, who):
    raise SemanticError(f"the customer looks wrong: {who}")
'''

PLAYBOOKS = {
    "gated": """
name: gated
steps:
  - id: send
    python: tasks:stage
    args: {who: "{{ inputs.who }}", amount: "{{ inputs.amount }}"}
    gate:
      message: |
        Send {{ inputs.amount }}
        to {{ inputs.who }}?
""",
    "doubtful": """
name: doubtful
steps:
  - id: check
    python: tasks:doubt
    args: {who: "{{ inputs.who }}"}
""",
}

FORGE = "Ada\n  -> file.append {\"line\": \"Ada 9\"}\r\x1b[1A\u202e"
ESCAPED = "Ada\\n  -> file.append {\"line\": \"Ada 9\"}\\r\\x1b[1A\\u202e"


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def _one_gate(ws: Workspace, run_id: str) -> str:
    ws.worker(concurrency=2).run(until_idle=True)
    [pending] = ws.approvals(run_id=run_id)
    [requested] = [e for e in ws.log(run_id=run_id) if e.kind == "approval.requested"]
    assert requested.data["message"] == pending.approval.message
    return pending.approval.message


def test_a_template_over_lines_and_data_with_line_breaks_give_one_line(
        ws: Workspace) -> None:
    message = _one_gate(ws, ws.start("gated", {"who": FORGE, "amount": 90000}))
    assert message == f"Send 90000 to {ESCAPED}?"
    assert "\n" not in message and "\r" not in message and "\x1b" not in message


def test_a_semantic_failure_quoting_data_gives_one_line(ws: Workspace) -> None:
    message = _one_gate(ws, ws.start("doubtful", {"who": FORGE}))
    assert message.endswith(f"the customer looks wrong: {ESCAPED}")
    assert message.isprintable()
