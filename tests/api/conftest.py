"""A workspace on each backend with the HTTP API over it (FastAPI's TestClient: the real
app, in process), and tokens of each scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.workspaces import write_workspace

from soloist.interfaces.api.app import create_app
from soloist.workspace import Workspace

TASKS = '''
def noop(ctx, **kw):
    return {"step": ctx.step_id, **kw}

def boom(ctx):
    raise ValueError("bad input")
'''

PLAYBOOKS = {
    "hello": """
name: hello
inputs:
  type: object
  properties: {who: {type: string}, n: {type: integer}}
  required: [who]
steps:
  - {id: greet, python: "tasks:noop", args: {who: "{{ inputs.who }}"}}
""",
    "gated": """
name: gated
inputs: {type: object, properties: {who: {type: string}}}
steps:
  - id: send
    tool: file.append
    args: {path: sent.txt, line: "hello {{ inputs.who }}"}
    gate: {message: "Send hello to {{ inputs.who }}?"}
""",
    "broken": """
name: broken
steps:
  - {id: b, python: "tasks:boom"}
""",
}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


@pytest.fixture
def client(ws: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(ws), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tokens(ws: Workspace) -> dict[str, dict[str, str]]:
    """An Authorization header per scope: ``tokens["run"]``."""
    out = {}
    for scope in ("read", "run", "approve", "admin"):
        secret = ws.access.create_token(f"{scope}-bot", [scope], "person:test").secret
        out[scope] = {"Authorization": f"Bearer {secret}"}
    return out
