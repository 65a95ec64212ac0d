"""A person's edit of a draft at a gate becomes an override: listed, and shown to later
drafts by the same agent for the same step (and to nothing else), on both backends.

The model is scripted so the test can read exactly what it was sent; the gate, the edit,
the log and the working context are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.runs import drain
from support.workspaces import write_workspace

from soloist.execution.llm.router import FixedRouter
from soloist.testing.llm import ScriptedProvider, reply
from soloist.workspace import Workspace

SOURCES = Path(__file__).resolve().parents[2] / "src"

TASKS = '''
from soloist import tool


@tool("mail.send", effect="write")
def mail_send(to: str, subject: str, body: str) -> dict:
    """Send an email (here: only say it was sent)."""
    return {"sent_to": to}


def template(ctx, lead):
    latest = ctx.overrides[0]["after"]["body"] if ctx.overrides else "Hello."
    return {"subject": f"For {lead}", "body": latest}
'''

OUTPUT = """
    output:
      type: object
      required: [subject, body]
      properties: {subject: {type: string}, body: {type: string}}
"""

OUTREACH = """
name: outreach
inputs: {type: object, properties: {lead: {type: string}}}
steps:
  - id: draft
    agent: acquisition
    task: "Write to {{ inputs.lead }}"
""" + OUTPUT + """
  - id: followup
    agent: acquisition
    task: "Follow up with {{ inputs.lead }}"
""" + OUTPUT + """
  - id: send
    tool: mail.send
    args: {to: "{{ inputs.lead }}@example.com", subject: "{{ steps.draft.output.subject }}",
           body: "{{ steps.draft.output.body }}"}
    gate: {message: "Send it?"}
"""

SUPPORT = """
name: support
steps:
  - id: draft
    agent: helpdesk
    task: "Answer the customer"
"""

TEMPLATED = """
name: templated
inputs: {type: object, properties: {lead: {type: string}}}
steps:
  - id: draft
    agent: acquisition
    task: "Write to {{ inputs.lead }}"
""" + OUTPUT + """    fallback: {python: tasks:template, args: {lead: "{{ inputs.lead }}"},
               models: ["scripted:*"]}
  - id: send
    tool: mail.send
    args: {to: "{{ inputs.lead }}@example.com", subject: "{{ steps.draft.output.subject }}",
           body: "{{ steps.draft.output.body }}"}
    gate: true
"""

AGENTS = {
    "acquisition": "name: acquisition\ninstructions: You write outreach.\nmodel: worker\n"
                   "tools: []\n",
    "helpdesk": "name: helpdesk\ninstructions: You answer customers.\nmodel: worker\n"
                "tools: []\n",
}
DRAFT = '{"subject": "Hi", "body": "Hi there, buy my design services."}'
WARM = "Dear Ada, I loved your <script>alert(1)</script> redesign."


def make_root(tmp_path: Path, toml: str = "") -> Path:
    root = write_workspace(tmp_path / "ws", {"outreach": OUTREACH, "support": SUPPORT,
                                             "templated": TEMPLATED}, TASKS,
                           toml='[tools]\nmodules = ["tasks"]\n' + toml)
    (root / "agents").mkdir()
    for name, text in AGENTS.items():
        (root / "agents" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    with Workspace(make_root(tmp_path), database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


def script(ws: Workspace, *texts: str) -> ScriptedProvider:
    provider = ScriptedProvider([reply(t) for t in texts])
    ws.runner.router = FixedRouter(provider, "m1")
    return provider


def edited_run(ws: Workspace) -> str:
    """A run whose draft a person edits at the gate of ``send``, with a reason."""
    script(ws, DRAFT, DRAFT)
    run_id = ws.start("outreach", {"lead": "ada"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    args = dict(pending.intents[0].args)
    ws.approve(pending.approval.id, "too salesy; mention their work",
               edits={0: {**args, "body": WARM}})
    drain(ws, run_id)
    return run_id


def built(ws: Workspace, run_id: str, step: str) -> dict[str, object]:
    [data] = [e.data for e in ws.log(run_id=run_id)
              if e.kind == "context.built" and e.step_id == step]
    return data


def refs(data: dict[str, object]) -> list[str]:
    return [i["ref"] for i in data["included"]]  # type: ignore[attr-defined]


def test_an_edit_at_a_gate_is_an_override_of_the_agent_step_it_came_from(
        ws: Workspace) -> None:
    run_id = edited_run(ws)
    [override] = ws.overrides()
    assert override["playbook"] == "outreach" and override["step"] == "send"
    assert override["run"] == run_id and override["tool"] == "mail.send"
    assert override["sources"] == [{"step": "draft", "agent": "acquisition"}]
    assert override["before"]["body"] == "Hi there, buy my design services."
    assert override["after"]["body"] == WARM
    assert override["reason"] == "too salesy; mention their work"
    assert override["actor"] == f"person:{ws.settings.actor}"
    assert ws.overrides(agent="acquisition") == [override]
    assert ws.overrides(step="draft") == [override] == ws.overrides(step="send")
    assert ws.overrides(agent="helpdesk") == [] == ws.overrides(playbook="support")
    assert ws.verify().ok


def test_the_next_draft_of_the_same_step_sees_it_and_says_so(ws: Workspace) -> None:
    edited_run(ws)
    [override] = ws.overrides()
    provider = script(ws, DRAFT, DRAFT)
    run_id = ws.start("outreach", {"lead": "bob"})
    ws.worker().run(until_idle=True)
    draft_request, followup_request = provider.requests
    assert WARM in draft_request.messages[0].content
    assert "because too salesy; mention their work" in draft_request.messages[0].content
    assert f"event:{override['id']}" in refs(built(ws, run_id, "draft"))
    # The same agent at another step, and another agent, see nothing of it.
    assert WARM not in followup_request.messages[0].content
    assert f"event:{override['id']}" not in refs(built(ws, run_id, "followup"))
    helpdesk = script(ws, "fine")
    other = ws.start("support")
    ws.worker().run(until_idle=True)
    assert WARM not in helpdesk.requests[0].messages[0].content
    assert f"event:{override['id']}" not in refs(built(ws, other, "draft"))


def test_override_examples_zero_turns_it_off(tmp_path: Path, db_url: str) -> None:
    root = make_root(tmp_path)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        edited_run(ws)
    (root / "soloist.toml").write_text((root / "soloist.toml").read_text()
                                       + "[memory]\noverride_examples = 0\n")
    with Workspace(root, database_url=db_url) as ws:
        assert ws.settings.memory.override_examples == 0
        assert len(ws.overrides()) == 1  # still listed for people
        provider = script(ws, DRAFT, DRAFT)
        run_id = ws.start("outreach", {"lead": "bob"})
        ws.worker().run(until_idle=True)
        assert WARM not in provider.requests[0].messages[0].content
        assert not [r for r in refs(built(ws, run_id, "draft")) if r.startswith("event:")]


def test_a_fallback_gets_the_overrides_and_can_follow_them(ws: Workspace) -> None:
    script(ws)
    first = ws.start("templated", {"lead": "ada"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    assert pending.intents[0].args["body"] == "Hello."
    ws.approve(pending.approval.id, "warmer",
               edits={0: {**pending.intents[0].args, "body": "Warm regards."}})
    drain(ws, first)
    [override] = ws.overrides(playbook="templated")
    assert override["sources"] == [{"step": "draft", "agent": "acquisition"}]
    second = ws.start("templated", {"lead": "bob"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    assert pending.intents[0].args["body"] == "Warm regards."
    assert f"event:{override['id']}" in refs(built(ws, second, "draft"))


def test_soloist_overrides_lists_them(ws: Workspace, db_url: str) -> None:
    edited_run(ws)
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "SOLOIST_DATABASE_URL": db_url,
           "COLUMNS": "200"}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "soloist.interfaces.cli.app",
                               "overrides", *args, "-w", str(ws.root)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    table = cli()
    assert "outreach/send" in table and "draft (acquisition)" in table
    assert "too salesy" in table and "body:" in table
    [listed] = json.loads(cli("--agent", "acquisition", "--json"))
    assert listed["after"]["body"] == WARM and listed["sources"][0]["step"] == "draft"
    assert json.loads(cli("--agent", "helpdesk", "--json")) == []
    assert "no overrides yet" in cli("--playbook", "support")
