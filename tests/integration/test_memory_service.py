"""The workspace's memory service methods, on both backends: `soloist memory` and the
agents' memory tools write through the same method, with their own actor and cause."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.workspaces import write_workspace
from typer.testing import CliRunner

from soloist.errors import InputError, NotFound
from soloist.interfaces.cli.memory import memory_app
from soloist.workspace import Workspace

REMEMBER = """
name: remember
steps:
  - id: note
    tool: memory.put
    args: {namespace: customers, subject: acme, key: plan, value: pro,
           reason: "read in the signed order"}
"""


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"remember": REMEMBER})
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def cli(ws: Workspace, db_url: str, *args: str) -> str:
    result = CliRunner().invoke(memory_app, [*args, "-w", str(ws.root)], env={
        "SOLOIST_DATABASE_URL": db_url, "SOLOIST_ACTOR": "ada"})
    assert result.exit_code == 0, result.output
    return result.output


def remember(ws: Workspace) -> str:
    run_id = ws.start("remember")
    ws.worker().run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    return run_id


def test_the_cli_and_the_memory_tools_write_through_the_same_method(
        ws: Workspace, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    callers: list[str | None] = []
    put_fact = Workspace.put_fact

    def watched(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        callers.append(kwargs.get("actor"))
        return put_fact(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "put_fact", watched)
    assert "customers/acme/plan is now v1" in cli(
        ws, db_url, "put", "customers", "acme", "plan", '"team"', "--reason", "on the phone")
    run_id = remember(ws)

    # A person by default; for the tool, the dispatching call's actor (the playbook here).
    assert callers == [None, "playbook:remember@v1"]
    person, agent = ws.fact_history("customers", "acme", "plan")
    assert (person.value, person.actor, person.run_id, person.reason) == (
        "team", "person:ada", None, "on the phone")
    [intent] = ws.show(run_id).intents
    assert (agent.value, agent.actor, agent.run_id, agent.step_id) == (
        "pro", "playbook:remember@v1", run_id, "note")
    assert agent.reason == f"read in the signed order [{intent.idempotency_key}]"
    # The CLI reads what the tool wrote, through the same service.
    shown = json.loads(cli(ws, db_url, "history", "customers", "acme", "plan", "--json"))
    assert [(v["version"], v["actor"]) for v in shown] == [(1, "person:ada"),
                                                           (2, "playbook:remember@v1")]
    [_, explained] = ws.why("customers", "acme", "plan")
    assert any(e.kind == "memory.put" for e in explained.events)


def test_a_write_once_per_idempotency_key_replays_its_version(ws: Workspace) -> None:
    first = ws.put_fact("n", "s", "k", 1, "first", actor="agent:a", run_id="r", once="key-1")
    again = ws.put_fact("n", "s", "k", 2, "first", actor="agent:a", run_id="r", once="key-1")
    assert (first.replayed, again.replayed, again.row.version) == (False, True, 1)
    gone = ws.forget_fact("n", "s", "k", "no longer", once="key-2")
    assert not gone.replayed and ws.forget_fact("n", "s", "k", "no longer",
                                                once="key-2").replayed
    assert [(r.version, r.op, r.actor) for r in ws.fact_history("n", "s", "k")] == [
        (1, "put", "agent:a"), (2, "forget", f"person:{ws.settings.actor}")]
    assert ws.get_fact("n", "s", "k") is None


def test_reverts_name_the_person_and_the_reason(ws: Workspace) -> None:
    ws.put_fact("customers", "acme", "plan", "free", "trial")
    run_id = remember(ws)
    current = ws.get_fact("customers", "acme", "plan")
    assert current is not None and current.value == "pro"
    written, skipped = ws.revert_run(run_id, "the order was a draft", actor="person:bo")
    assert skipped == [] and [(r.op, r.value, r.actor) for r in written] == [
        ("revert", "free", "person:bo")]
    back = ws.revert_fact("customers", "acme", "plan", 2, "it was signed after all")
    assert (back.version, back.value, back.reverts) == (4, "pro", 2)
    assert [f.subject for f in ws.facts("cust*")] == ["acme"]
    with pytest.raises(NotFound, match="no run 'r-nope'"):
        ws.revert_run("r-nope", "undo")
    with pytest.raises(InputError, match="the version must be at least 1"):
        ws.revert_fact("customers", "acme", "plan", 0, "undo")
    with pytest.raises(NotFound, match="has no version 9"):
        ws.revert_fact("customers", "acme", "plan", 9, "undo")


def test_bad_writes_and_reads_are_one_sentence(ws: Workspace) -> None:
    with pytest.raises(InputError, match="a memory write needs a reason"):
        ws.put_fact("n", "s", "k", 1, " ")
    with pytest.raises(InputError, match="must be 1 to 200 characters"):
        ws.put_fact("", "s", "k", 1, "why")
    with pytest.raises(NotFound, match="nothing was ever written to n/s/k"):
        ws.fact_history("n", "s", "k")
    with pytest.raises(InputError, match="the number of hits must be at least 1"):
        ws.search_memory("anything", k=0)
    assert ws.get_fact("n", "s", "k") is None  # nothing was written


def test_import_export_documents_and_search(ws: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "memory.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in (
        {"type": "fact", "namespace": "clients", "subject": "acme", "key": "pricing",
         "value": "per seat", "reason": "the contract"},
        {"type": "document", "namespace": "clients", "key": "acme/brief",
         "text": "Acme pays per seat; pricing is reviewed every spring."},
    )) + "\n")
    assert ws.import_memory(source, actor="person:bo") == {"facts": 1, "documents": 1}
    fact = ws.get_fact("clients", "acme", "pricing")
    assert fact is not None and (fact.actor, fact.reason) == ("person:bo", "the contract")
    document = ws.document("clients", "acme/brief")
    assert document.text.startswith("Acme pays per seat") and document.actor == "person:bo"
    assert [d.version for d in ws.document_history("clients", "acme/brief")] == [1]
    hits = ws.search_memory("pricing", "clients")
    assert {(h.kind, h.key) for h in hits} == {("fact", "acme/pricing"),
                                               ("document", "acme/brief")}
    exported = [json.loads(line) for line in ws.export_memory("clients")]
    assert [(e["type"], e["key"]) for e in exported] == [("fact", "pricing"),
                                                         ("document", "acme/brief")]
    assert ws.memory_status()["reembed_needed"] is False  # the import embedded its chunks
    with pytest.raises(InputError, match="does not exist"):
        ws.import_memory(tmp_path / "missing.jsonl")
