"""A workspace on each backend with the app over it, and a browser-like client signed in
through a one-time login link, as a person opening the dashboard would be."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.workspaces import write_workspace

from soloist.interfaces.api.app import create_app
from soloist.workspace import Workspace

TASKS = '''
from soloist import tool


@tool("mail.send", effect="write")
def mail_send(to: str, subject: str, body: str, cc: str = "") -> dict:
    """Send an email (here: only say it was sent)."""
    return {"sent_to": to}


def shout(ctx, **kw):
    return {"said": "<script>alert(1)</script>", **kw}

def flaky(ctx):
    from soloist.errors import TransientError

    if ctx.attempt < 2:
        raise TransientError("the first try fails")
    return {"attempt": ctx.attempt}

def boom(ctx):
    raise ValueError("bad <b>input</b>")
'''

PLAYBOOKS = {
    "hello": """
name: hello
inputs: {type: object, properties: {who: {type: string}, key: {type: string}}}
steps:
  - {id: greet, python: "tasks:shout", args: {who: "{{ inputs.who }}"}}
""",
    "mail": """
name: mail
inputs: {type: object, properties: {who: {type: string}}}
steps:
  - id: send
    tool: mail.send
    args: {to: "{{ inputs.who }}@example.com", cc: "boss@example.com",
           subject: "Hello <b>{{ inputs.who }}</b>", body: "Dear {{ inputs.who }}, hi."}
    gate: {message: "Send the greeting to {{ inputs.who }}?"}
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
    "flaky": """
name: flaky
steps:
  - {id: wobble, python: "tasks:flaky", retry: {max_attempts: 3, backoff: 0.01, jitter: 0}}
""",
    "broken": """
name: broken
steps:
  - {id: b, python: "tasks:boom"}
""",
}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS,
                           toml='[tools]\nmodules = ["tasks"]\n')
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


@pytest.fixture
def anonymous(ws: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(ws), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def browser(anonymous: TestClient, ws: Workspace) -> TestClient:
    """The client, signed in as the operator through a login link."""
    link = ws.access.login_link("person:test")
    response = anonymous.get(f"/login?token={link.secret}", follow_redirects=False)
    assert response.status_code == 303, response.text
    return anonymous
