"""A run with an agent step, on both backends: its page shows what the agent saw (the
working context), each tool call and the policy's decision about it, and the agent's
output as text even when it is markup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.workspaces import write_workspace

from soloist.execution.costs import Price
from soloist.execution.llm.router import FixedRouter
from soloist.interfaces.api.app import create_app
from soloist.testing.llm import ScriptedProvider, reply, tool_call
from soloist.workspace import Workspace

TASKS = '''
from soloist.execution.tools.base import tool

@tool("crm.lookup", effect="read")
def crm_lookup(name: str) -> dict:
    """Find a customer."""
    return {"name": name, "plan": "<b>pro</b>"}
'''

AGENT = """
name: assistant
instructions: You triage the inbox.
model: worker
tools: [crm.lookup]
"""

TRIAGE = """
name: triage
inputs: {type: object, properties: {email: {type: string}}}
steps:
  - id: read
    agent: assistant
    task: "Triage this email: {{ inputs.email }}"
    output: {type: object, required: [summary], properties: {summary: {type: string}}}
"""


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"triage": TRIAGE}, TASKS,
                           toml='[tools]\nmodules = ["tasks"]\n[budgets]\n'
                                'workspace_daily_usd = 5\nplaybook_daily_usd = 2\n')
    (root / "agents").mkdir()
    (root / "agents" / "assistant.yaml").write_text(AGENT)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


def test_the_run_page_shows_what_the_agent_saw_and_did(ws: Workspace) -> None:
    ws.runner.router = FixedRouter(ScriptedProvider([
        tool_call("crm.lookup", {"name": "ada"}),
        tool_call("http.request", {"method": "POST", "url": "http://203.0.113.9/x"}),
        reply('{"summary": "<script>alert(1)</script>"}'),
    ]), "m1", Price(input=1.0, output=2.0))
    run_id = ws.start("triage", {"email": "Ada <ada@example.com> wants a refund"})
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    with TestClient(create_app(ws), raise_server_exceptions=False) as browser:
        link = ws.access.login_link("person:test").secret
        assert browser.get(f"/login?token={link}", follow_redirects=False).status_code == 303
        html = browser.get(f"/runs/{run_id}").text
        home = browser.get("/").text
    assert "The working context it was given" in html
    # what went into its context, by kind and size (the record the engine keeps)
    assert "&#34;kind&#34;: &#34;task&#34;" in html and "&#34;budget&#34;:" in html
    assert "Tool call crm.lookup" in html and "&lt;b&gt;pro&lt;/b&gt;" in html
    assert "Policy: <strong>allow</strong> crm.lookup" in html
    assert "Policy: <strong>deny</strong> http.request" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html and "<b>pro</b>" not in html
    assert "Model calls" in html and "m1" in html
    # today's spend against the budgets, on the home page
    assert "of $5.00 a day" in home and "<td>triage</td><td>$0.0001</td>" in home
    assert "$2.00 a day" in home


def test_the_run_page_says_when_a_fallback_did_the_agents_work(ws: Workspace) -> None:
    with (ws.root / "tasks.py").open("a") as tasks:
        tasks.write("\n\ndef summary(ctx):\n    return {'summary': '<i>by the template</i>'}\n")
    playbook = ws.root / "playbooks" / "triage.yaml"
    playbook.write_text(TRIAGE + '    fallback: {python: "tasks:summary", '
                                 'models: ["scripted:*"]}\n')
    # A workspace opened anew imports the tasks.py just written.
    with Workspace(ws.root, database_url=ws.settings.database_url) as fresh:
        fresh.deploy()
        fresh.runner.router = FixedRouter(ScriptedProvider([]), "m1")
        run_id = fresh.start("triage", {"email": "hi"})
        fresh.worker().run(until_idle=True)
        assert fresh.get_run(run_id).state == "done", fresh.get_run(run_id).error
        with TestClient(create_app(fresh), raise_server_exceptions=False) as browser:
            link = fresh.access.login_link("person:test").secret
            assert browser.get(f"/login?token={link}",
                               follow_redirects=False).status_code == 303
            html = browser.get(f"/runs/{run_id}").text
    assert ("Fallback: <strong>tasks:summary</strong> did the work of agent assistant@v1: "
            "model scripted:m1 is listed in fallback.models") in html
    assert "&lt;i&gt;by the template&lt;/i&gt;" in html and "<i>by the" not in html
