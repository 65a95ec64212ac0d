"""An agent step's deterministic fallback, in the durable lifecycle, on both backends.

The model is scripted; the playbooks, the fallback's Python function, checks, gates, the
log and the cost ledger are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import ConfigError, DefinitionError, TransientError
from soloist.execution.costs import Price
from soloist.execution.llm.router import FixedRouter, Route
from soloist.testing.llm import ScriptedProvider, reply, tool_call
from soloist.workspace import Workspace

SOURCES = Path(__file__).resolve().parents[2] / "src"

TASKS = '''
from soloist.execution.tools.base import tool

@tool("crm.lookup", effect="read")
def crm_lookup(name: str) -> dict:
    """Find a customer."""
    return {"name": name}


def outreach_template(ctx, lead, tone="plain"):
    ctx.stage("note", {"text": f"drafted for {lead}"})
    return {"subject": f"Hello {lead}", "body": f"Dear {lead}, a {tone} note.",
            "overrides": len(ctx.overrides)}
'''

AGENT = """
name: acquisition
instructions: You write short outreach emails.
model: worker
tools: [crm.lookup, note]
"""

OUTREACH = """
name: outreach
inputs: {type: object, properties: {lead: {type: string}}}
steps:
  - id: draft
    agent: acquisition
    task: "Write to {{ inputs.lead }}"
    output:
      type: object
      required: [subject, body]
      properties: {subject: {type: string}, body: {type: string}}
    check: ["output.subject != 'Hello Mallory'"]
    fallback:
      python: tasks:outreach_template
      args: {lead: "{{ inputs.lead }}"}
"""


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"outreach": OUTREACH}, TASKS,
                           toml='[tools]\nmodules = ["tasks"]\n')
    (root / "agents").mkdir()
    (root / "agents" / "acquisition.yaml").write_text(AGENT)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


def script(ws: Workspace, *responses: object, name: str = "scripted") -> ScriptedProvider:
    provider = ScriptedProvider(responses, name=name)  # type: ignore[arg-type]
    ws.runner.router = FixedRouter(provider, "m1", Price(input=1.0, output=2.0))
    return provider


def with_models(ws: Workspace, *globs: str) -> None:
    path = ws.root / "playbooks" / "outreach.yaml"
    path.write_text(path.read_text() + f"      models: {list(globs)}\n")
    ws.deploy()


def fallbacks(ws: Workspace, run_id: str) -> list[dict[str, object]]:
    return [e.data for e in ws.log(run_id=run_id) if e.kind == "agent.fallback"]


def test_a_model_listed_in_fallback_models_is_not_called(ws: Workspace) -> None:
    with_models(ws, "local:*", "scripted:m*")
    provider = script(ws)  # any call would exhaust the script and fail the step
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    assert provider.calls == 0 and ws.costs(run_id) == []
    [step] = ws.show(run_id).steps
    assert step.output == {"subject": "Hello Ada", "body": "Dear Ada, a plain note.",
                           "overrides": 0}
    assert fallbacks(ws, run_id) == [{
        "agent": "acquisition@v1", "reason": "model scripted:m1 is listed in fallback.models",
        "fallback": "tasks:outreach_template"}]
    # The recorded context says the fallback, not the agent, was given it.
    [built] = [e.data for e in ws.log(run_id=run_id) if e.kind == "context.built"]
    assert built["fallback"] == "tasks:outreach_template"
    # What the fallback staged went out like any step's intents.
    [intent] = ws.show(run_id).intents
    assert intent.args == {"text": "drafted for Ada"} and intent.status == "dispatched"
    assert ws.verify().ok


def test_a_model_not_listed_is_tried_and_its_work_kept(ws: Workspace) -> None:
    with_models(ws, "local:*")
    provider = script(ws, reply('{"subject": "Hi Ada", "body": "From the model."}'))
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    assert provider.calls == 1
    assert ws.show(run_id).steps[0].output == {"subject": "Hi Ada", "body": "From the model."}
    assert fallbacks(ws, run_id) == []


def test_an_agent_with_no_valid_output_falls_back_and_its_attempt_is_logged(
        ws: Workspace) -> None:
    script(ws, reply("not json at all"), reply("{still not"), reply('{"subject": 3}'))
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    assert ws.show(run_id).steps[0].output["subject"] == "Hello Ada"
    [fallback] = fallbacks(ws, run_id)
    assert str(fallback["reason"]).startswith("agent acquisition: ")
    # The failed attempt's calls, events and cost are kept.
    events = ws.log(run_id=run_id)
    assert len([e for e in events if e.kind == "llm.call"]) == 3
    assert len([e for e in events if e.kind == "agent.invalid_output"]) == 3
    assert len(ws.costs(run_id)) == 3 and sum(c.cost_usd for c in ws.costs(run_id)) > 0


def test_a_model_that_is_not_configured_falls_back(ws: Workspace) -> None:
    class Unconfigured:
        def route(self, model_or_tier: str) -> Route:
            raise ConfigError("agent steps need a model: configure [llm.providers]")

    ws.runner.router = Unconfigured()
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    [fallback] = fallbacks(ws, run_id)
    assert "configure [llm.providers]" in str(fallback["reason"])


def test_a_failed_check_after_a_fallback_still_goes_to_a_person(ws: Workspace) -> None:
    with_models(ws, "scripted:*")
    script(ws)
    run_id = ws.start("outreach", {"lead": "Mallory"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    assert pending.approval.reason == "semantic"
    assert "check failed" in pending.approval.message
    assert ws.get_run(run_id).state == "running"
    assert len(fallbacks(ws, run_id)) == 1


def test_a_transient_failure_retries_the_agent_and_does_not_fall_back(
        ws: Workspace) -> None:
    provider = script(ws, TransientError("503 from the provider", retry_after=0.01),
                      reply('{"subject": "Hi Ada", "body": "Second try."}'))
    run_id = ws.start("outreach", {"lead": "Ada"})
    deadline = time.time() + 10
    while ws.get_run(run_id).state == "running" and time.time() < deadline:
        ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    assert provider.calls == 2 and ws.show(run_id).steps[0].attempt == 2
    assert ws.show(run_id).steps[0].output["body"] == "Second try."
    assert fallbacks(ws, run_id) == []


def test_an_agent_refused_by_policy_is_not_quietly_replaced(ws: Workspace) -> None:
    # It tries a tool it was not granted, then never gives a valid answer.
    script(ws, tool_call("http.request", {"method": "GET", "url": "http://127.0.0.1:9/"}),
           reply("no"), reply("no"), reply("no"))
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "failed"
    assert fallbacks(ws, run_id) == []
    assert [e.data["decision"] for e in ws.log(run_id=run_id)
            if e.kind == "policy.decision"] == ["deny"]


def test_a_budget_stop_goes_to_a_person_not_to_the_fallback(ws: Workspace) -> None:
    path = ws.root / "playbooks" / "outreach.yaml"
    path.write_text(path.read_text().replace("steps:", "budget: {cost_usd: 0.0000001}\nsteps:"))
    ws.deploy()
    provider = script(ws, reply('{"subject": "x", "body": "y"}'))
    run_id = ws.start("outreach", {"lead": "Ada " * 500})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    assert pending.approval.reason == "semantic" and "budget" in pending.approval.message
    assert provider.calls == 0 and fallbacks(ws, run_id) == []


def test_deploy_refuses_a_fallback_that_names_no_function(ws: Workspace) -> None:
    path = ws.root / "playbooks" / "outreach.yaml"
    path.write_text(path.read_text().replace("tasks:outreach_template", "tasks:outreach_tmpl"))
    with pytest.raises(DefinitionError, match=r"steps\.0\.fallback\.python: tasks\.py defines "
                                              r"no 'outreach_tmpl'"):
        ws.deploy()


def test_soloist_show_marks_the_step_its_fallback_did(ws: Workspace, db_url: str) -> None:
    with_models(ws, "scripted:*")
    script(ws)
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "SOLOIST_DATABASE_URL": db_url,
           "COLUMNS": "200"}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "soloist.interfaces.cli.app", *args,
                               "-w", str(ws.root)], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "done (fallback)" in cli("show", run_id)
    step = cli("show", run_id, "--step", "draft")
    assert ("fallback tasks:outreach_template did the work of agent acquisition@v1: model "
            "scripted:m1 is listed in fallback.models") in step
    shown = json.loads(cli("show", run_id, "--json"))
    assert shown["fallbacks"]["draft"]["fallback"] == "tasks:outreach_template"


def test_a_fallback_that_fails_too_fails_the_step_with_the_whole_trail(
        ws: Workspace) -> None:
    path = ws.root / "playbooks" / "outreach.yaml"
    path.write_text(path.read_text().replace('args: {lead: "{{ inputs.lead }}"}',
                                             'args: {lead: "{{ inputs.lead }}", nope: 1}'))
    ws.deploy()
    script(ws, reply("no"), reply("no"), reply("no"))
    run_id = ws.start("outreach", {"lead": "Ada"})
    ws.worker().run(until_idle=True)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "nope" in (run.error or "")
    events = ws.log(run_id=run_id)
    assert len([e for e in events if e.kind == "llm.call"]) == 3
    assert len(fallbacks(ws, run_id)) == 1 and len(ws.costs(run_id)) == 3
