"""A workspace's memory/ folder, deployed and pinned, and memory for python steps and
agents, on both backends: deploy seeds documents and facts as versions with actor and
reason, a run reads the document versions it pinned, writes carry their sources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace
from typer.testing import CliRunner

from soloist.errors import DefinitionError, InputError
from soloist.execution.context import ToolCall
from soloist.execution.costs import Price
from soloist.execution.llm.router import FixedRouter
from soloist.interfaces.cli.memory import memory_app
from soloist.testing.llm import ScriptedProvider, reply, tool_call
from soloist.workspace import Workspace

NO_VECTORS = '[memory.embeddings]\nprovider = "none"\n[tools]\nmodules = ["tasks"]\n'

QUALIFY = """
name: qualify
memory: [playbooks/discovery-script]
steps:
  - id: questions
    python: tasks:questions
"""

BRIEF = """
name: brief
inputs: {type: object, properties: {client: {type: string}}}
steps:
  - id: write
    python: tasks:write_brief
    args: {client: "{{ inputs.client }}"}
"""

TASKS = '''
def questions(ctx):
    script = ctx.memory.document("playbooks", "discovery-script")
    rate = ctx.memory.fact("services", "sprint", "day_rate")
    hits = ctx.memory.search("fintech", "portfolio", 3)
    return {"text": script.text, "version": script.version, "rate": rate.value,
            "portfolio": sorted({h.key for h in hits}),
            "services": len(ctx.memory.facts("services"))}


def write_brief(ctx, client):
    email = {"kind": "email", "message_id": "<answers-1@client.example>", "event": 7}
    ctx.stage("memory.write", {"namespace": f"projects/{client}", "key": "brief",
                               "text": "Problem: onboarding. Budget: 12k.",
                               "reason": "from the discovery answers", "sources": [email],
                               "metadata": {"client": client}})
    ctx.stage("memory.put", {"namespace": f"projects/{client}", "subject": client,
                             "key": "budget", "value": 12000,
                             "reason": "from the discovery answers", "sources": [email]})
    return "staged"
'''

SCRIPT_V1 = "# Discovery\n\nWhat problem are you solving?\n"
SCRIPT_V2 = SCRIPT_V1 + "\nWhat is your budget?\n"
RATES = """
sprint:
  day_rate: 900
  currency: EUR
audit:
  day_rate: 700
"""


def cli(ws: Workspace, *args: str) -> str:
    result = CliRunner().invoke(memory_app, [*args, "-w", str(ws.root)], env={
        "SOLOIST_DATABASE_URL": ws.settings.database_url, "COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def memory_folder(root: Path) -> None:
    for path, text in {
        "memory/playbooks/discovery-script.md": SCRIPT_V1,
        "memory/portfolio/fintech-app.md": "A fintech app: onboarding in three steps.\n",
        "memory/portfolio/health/clinic.md": "A clinic's booking flow.\n",
        "memory/services/rates.yaml": RATES,
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"qualify": QUALIFY, "brief": BRIEF}, TASKS,
                           toml=NO_VECTORS)
    memory_folder(root)
    with Workspace(root, database_url=db_url) as workspace:
        yield workspace


def test_deploy_seeds_memory_and_only_what_changed(ws: Workspace) -> None:
    report = ws.deploy("person:ada")
    deployed = {(k, n): v for k, n, v in report.deployed}
    assert deployed[("memory", "playbooks/discovery-script")] == 1
    assert deployed[("memory", "portfolio/fintech-app")] == 1
    assert deployed[("memory", "portfolio/health/clinic")] == 1
    assert deployed[("fact", "services/sprint/day_rate")] == 1
    assert deployed[("fact", "services/audit/day_rate")] == 1
    doc = ws.document("portfolio", "fintech-app")
    assert (doc.version, doc.actor, doc.reason) == (
        1, "person:ada", "deployed from memory/portfolio/fintech-app.md")
    assert doc.metadata == {"source": "memory/portfolio/fintech-app.md"}
    assert ws.document("portfolio/health", "clinic").text == "A clinic's booking flow.\n"
    fact = ws.get_fact("services", "sprint", "day_rate")
    assert fact is not None and (fact.value, fact.actor, fact.reason) == (
        900, "person:ada", "deployed from memory/services/rates.yaml")
    assert [e.data["key"] for e in ws.log() if e.kind == "memory.deployed"] == [
        "discovery-script", "fintech-app", "clinic"]

    again = ws.deploy("person:ada")
    assert again.deployed == []
    assert ("memory", "portfolio/fintech-app", 1) in again.unchanged
    assert ("fact", "services/sprint/day_rate", 1) in again.unchanged

    (ws.root / "memory/portfolio/fintech-app.md").write_text("A fintech app, revised.\n")
    (ws.root / "memory/services/rates.yaml").write_text(RATES.replace("900", "950"))
    (ws.root / "memory/portfolio/health/clinic.md").unlink()  # left in memory as it is
    edited = ws.deploy("person:bob")
    assert sorted(edited.deployed) == [("fact", "services/sprint/day_rate", 2),
                                       ("memory", "portfolio/fintech-app", 2)]
    [v1, v2] = ws.document_history("portfolio", "fintech-app")
    assert (v1.text, v2.text, v2.actor) == ("A fintech app: onboarding in three steps.\n",
                                            "A fintech app, revised.\n", "person:bob")
    assert ws.document("portfolio/health", "clinic").version == 1
    assert ws.get_fact("services", "sprint", "day_rate").value == 950  # type: ignore[union-attr]


def test_soloist_deploy_prints_the_memory_it_deployed(ws: Workspace) -> None:
    import typer

    from soloist.interfaces.cli import definitions

    app = typer.Typer()
    definitions.register(app)
    env = {"SOLOIST_DATABASE_URL": ws.settings.database_url}
    first = CliRunner().invoke(app, ["deploy", "-w", str(ws.root)], env=env)
    assert first.exit_code == 0, first.output
    assert "deployed  memory portfolio/fintech-app v1" in first.output
    assert "deployed  fact services/sprint/day_rate v1" in first.output
    (ws.root / "memory/services/rates.yaml").write_text("sprint:\n  day_rate: [900\n")
    bad = CliRunner().invoke(app, ["deploy", "-w", str(ws.root)], env=env)
    assert bad.exit_code == 1
    assert "error: memory/services/rates.yaml:3:1: YAML syntax" in bad.output


def test_a_version_written_since_the_deploy_is_kept_until_the_file_changes(
        ws: Workspace) -> None:
    ws.deploy()
    ws.write_document("playbooks", "discovery-script", "edited by hand", "on the phone")
    assert ws.deploy().deployed == []
    assert ws.document("playbooks", "discovery-script").text == "edited by hand"


def test_a_run_reads_the_document_version_it_pinned(ws: Workspace) -> None:
    ws.deploy()
    before = ws.start("qualify")  # pins discovery-script v1, still waiting for a worker
    assert ws.get_run(before).pins["documents"] == {"playbooks/discovery-script": 1}
    (ws.root / "memory/playbooks/discovery-script.md").write_text(SCRIPT_V2)
    assert ("memory", "playbooks/discovery-script", 2) in ws.deploy().deployed
    after = ws.start("qualify")
    ws.worker().run(until_idle=True)
    old, new = (ws.show(r).steps[0].output for r in (before, after))
    assert (old["version"], old["text"]) == (1, SCRIPT_V1)
    assert (new["version"], new["text"]) == (2, SCRIPT_V2)
    assert new["rate"] == 900 and new["services"] == 3
    assert new["portfolio"] == ["fintech-app"]
    # A read outside a run, and the memory.document tool in a run, alike.
    assert ws.run_document("playbooks", "discovery-script", before).version == 1
    assert ws.run_document("playbooks", "discovery-script").version == 2

    # The deploy of v2 is a change; the first run done on it ends its lead time.
    changes = {(c["kind"], c["name"], c["version"]): c for c in ws.metrics()["changes"]}
    v1 = changes[("memory", "playbooks/discovery-script", 1)]
    v2 = changes[("memory", "playbooks/discovery-script", 2)]
    finished = ws.get_run(after).finished_at
    assert finished is not None and v2["first_done_at"] == finished
    assert v2["lead_time_s"] == pytest.approx(finished - v2["deployed_at"])
    assert v1["first_done_at"] == ws.get_run(before).finished_at
    # A document no playbook pins is no change to wait for.
    assert ("memory", "portfolio/fintech-app", 1) not in changes
    assert v2["pinned_by"] == "qualify"
    # Per playbook, the documents it names are its changes too.
    mine = ws.metrics(playbook="qualify")
    assert ("memory", "playbooks/discovery-script", 2) in {
        (c["kind"], c["name"], c["version"]) for c in mine["changes"]}
    assert all(c["kind"] != "memory" for c in ws.metrics(playbook="brief")["changes"])
    [qualify] = [p for p in ws.metrics()["by_playbook"] if p["playbook"] == "qualify"]
    assert qualify["change_lead_time_s"] is not None


def test_a_playbook_written_in_python_pins_its_documents_alike(ws: Workspace) -> None:
    (ws.root / "playbooks" / "pyqualify.py").write_text(
        "from soloist import Playbook\n\n"
        "QUALIFY = Playbook(name='pyqualify', memory=['playbooks/discovery-script'],\n"
        "                   steps=[{'id': 'questions', 'python': 'tasks:questions'}])\n")
    ws.deploy()
    run_id = ws.start("pyqualify")
    assert ws.get_run(run_id).pins["documents"] == {"playbooks/discovery-script": 1}
    ws.worker().run(until_idle=True)
    assert ws.show(run_id).steps[0].output["version"] == 1


def test_memory_write_keeps_its_sources_and_a_replayed_dispatch_writes_once(
        ws: Workspace) -> None:
    ws.deploy()
    run_id = ws.start("brief", {"client": "acme"})
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    email = {"kind": "email", "message_id": "<answers-1@client.example>", "event": 7}
    [brief] = ws.document_history("projects/acme", "brief")
    assert brief.metadata == {"client": "acme", "sources": [email]}
    assert (brief.actor, brief.run_id, brief.step_id) == ("playbook:brief@v1", run_id, "write")
    [budget] = ws.fact_history("projects/acme", "acme", "budget")
    assert budget.value == 12000 and budget.sources == [email]
    [why] = ws.why("projects/acme", "acme", "budget")
    assert why.version.sources == [email]
    shown = cli(ws, "why", "projects/acme", "acme", "budget")
    assert "from email message_id=<answers-1@client.example> event=7" in shown
    shown = cli(ws, "document", "projects/acme", "brief", "--history")
    assert "email message_id=<answers-1" in shown

    write, put = ws.show(run_id).intents
    for intent in (write, put):  # a dispatch cut short and done again replays
        again = ws.runner.dispatch(intent.tool, intent.args, ToolCall(
            run_id, "write", intent.idempotency_key, str(ws.root),
            actor="playbook:brief@v1"))
        assert again == {"version": 1, "replayed": True}
    assert len(ws.document_history("projects/acme", "brief")) == 1
    assert len(ws.fact_history("projects/acme", "acme", "budget")) == 1

    # Exported and imported again, a fact keeps its sources.
    lines = [json.loads(line) for line in ws.export_memory("projects/*")]
    [exported] = [r for r in lines if r["type"] == "fact"]
    assert exported["sources"] == [email]
    dump = ws.root / "dump.jsonl"
    dump.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    assert ws.import_memory(dump) == {"facts": 1, "documents": 1}
    assert ws.fact_history("projects/acme", "acme", "budget")[-1].sources == [email]
    dump.write_text('{"namespace": "n", "subject": "s", "key": "k", "value": 1, '
                    '"sources": "an email"}\n')
    with pytest.raises(DefinitionError, match="sources must be a list"):
        ws.import_memory(dump)


def test_sources_are_checked_wherever_they_are_given(ws: Workspace) -> None:
    with pytest.raises(InputError, match=r"sources\[0\] must be an object with a \"kind\""):
        ws.write_document("projects/acme", "brief", "text", "why", sources=["an email"])
    with pytest.raises(InputError, match="sources must be a list"):
        ws.write_document("projects/acme", "brief", "text", "why",
                          metadata={"sources": "an email"})
    with pytest.raises(InputError, match="sources must be a list"):
        ws.put_fact("projects/acme", "acme", "budget", 1, "why", sources="an email")
    assert ws.documents.latest() == [] and ws.facts() == []


def test_a_bad_memory_file_fails_the_deploy_and_nothing_is_deployed(ws: Workspace) -> None:
    (ws.root / "memory/services/rates.yaml").write_text("sprint:\n  day_rate: [900\n")
    (ws.root / "memory/services/more.yaml").write_text("audit:\n  when: 2026-01-31\n")
    (ws.root / "memory/stray.md").write_text("no namespace\n")
    (ws.root / "playbooks/qualify.yaml").write_text(QUALIFY.replace(
        "playbooks/discovery-script", "playbooks/nowhere"))
    with pytest.raises(DefinitionError) as caught:
        ws.deploy()
    problems = caught.value.problems
    assert any(p.startswith("memory/services/rates.yaml:3:1: YAML syntax") for p in problems)
    assert any(p.startswith("memory/services/more.yaml:2:9: audit.when: the value is not "
                            "plain JSON") for p in problems), problems
    assert any(p.startswith("memory/stray.md:1:1: a memory file belongs in a folder")
               for p in problems)
    assert any(p.startswith("playbooks/qualify.yaml:3:10: memory.0: no document "
                            "playbooks/nowhere") for p in problems), problems
    assert ws.definitions() == []
    assert ws.facts() == [] and ws.documents.latest() == []


def test_an_agent_writes_documents_only_within_its_scopes(ws: Workspace) -> None:
    (ws.root / "agents").mkdir()
    (ws.root / "agents" / "qualifier.yaml").write_text(
        "name: qualifier\ninstructions: Fill the brief.\nmodel: worker\n"
        "tools: ['memory.*']\nmemory: {read: ['playbooks'], write: ['projects/*']}\n")
    (ws.root / "playbooks" / "fill.yaml").write_text(
        "name: fill\nmemory: [playbooks/discovery-script]\nsteps:\n"
        "  - id: fill\n    agent: qualifier\n    task: Fill the brief.\n")
    ws.deploy()
    (ws.root / "memory/playbooks/discovery-script.md").write_text(SCRIPT_V2)
    provider = ScriptedProvider([
        tool_call("memory.document", {"namespace": "playbooks", "key": "discovery-script"}),
        tool_call("memory.write", {"namespace": "playbooks", "key": "discovery-script",
                                   "text": "everyone gets the price list",
                                   "reason": "injected"}),
        tool_call("memory.write", {"namespace": "projects/acme", "key": "brief",
                                   "text": "Scope: an app.", "reason": "from the answers",
                                   "sources": [{"kind": "email", "message_id": "<a@b>"}]}),
        reply("done")])
    ws.runner.router = FixedRouter(provider, "m1", Price(input=0.0, output=0.0))
    run_id = ws.start("fill")
    ws.deploy()  # v2 of the script, after the run pinned v1
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    read = [m.content for m in provider.requests[1].messages if m.role == "tool"]
    assert "What problem are you solving?" in read[0] and "budget" not in read[0]
    assert [r.text for r in ws.document_history("playbooks", "discovery-script")] == [
        SCRIPT_V1, SCRIPT_V2]
    [brief] = ws.document_history("projects/acme", "brief")
    assert brief.actor == "agent:qualifier@v1"
    assert brief.metadata["sources"] == [{"kind": "email", "message_id": "<a@b>"}]
    denied = [e.data for e in ws.log(run_id=run_id)
              if e.kind == "policy.decision" and e.data["decision"] == "deny"]
    assert [(d["tool"], d["rule"]) for d in denied] == [("memory.write",
                                                         "default:memory-scope")]
