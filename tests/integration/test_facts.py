"""Versioned facts with provenance, on both backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import DeterministicError, InputError, NotFound, StoreError
from soloist.memory.facts import Cause
from soloist.workspace import Workspace

TASKS = '''
def learn(ctx, plan):
    return {"plan": plan}
'''
PLAYBOOKS = {"learn": """
name: learn
steps:
  - {id: s, python: "tasks:learn", args: {plan: "{{ inputs.plan }}"}}
"""}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS,
                           toml='[memory.expiry]\n"leads/*" = "0.2s"\n')
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


def test_writes_never_overwrite_and_history_says_who_and_why(ws: Workspace) -> None:
    ada = Cause("person:ada", "signed the pro plan")
    first = ws.memory.put("customers", "acme", "plan", "pro", ada)
    second = ws.memory.put("customers", "acme", "plan", {"name": "team", "seats": 5},
                           Cause("agent:sales@v2", "upgrade email", "r-1", "read"))
    assert (first.version, second.version) == (1, 2)
    current = ws.memory.get("customers", "acme", "plan")
    assert current is not None and current.value == {"name": "team", "seats": 5}
    before = ws.memory.get("customers", "acme", "plan", as_of=second.recorded_at - 1e-6)
    assert before is not None and before.value == "pro"
    history = ws.memory.history("customers", "acme", "plan")
    assert [(h.version, h.actor, h.reason) for h in history] == [
        (1, "person:ada", "signed the pro plan"), (2, "agent:sales@v2", "upgrade email")]
    forgotten = ws.memory.forget("customers", "acme", "plan", Cause("person:ada", "churned"))
    assert forgotten.version == 3
    assert ws.memory.get("customers", "acme", "plan") is None
    assert len(ws.memory.history("customers", "acme", "plan")) == 3  # still in history
    kinds = [e.kind for e in ws.log() if e.kind.startswith("memory.")]
    assert kinds == ["memory.put", "memory.put", "memory.forget"]


def test_the_store_refuses_to_edit_a_fact(ws: Workspace) -> None:
    ws.memory.put("n", "s", "k", 1, Cause("person:a", "r"))
    with pytest.raises(StoreError, match="append-only"), ws.store.transaction() as tx:
        conn = tx.facts.conn  # type: ignore[attr-defined]
        conn.run("UPDATE facts SET value = '2'")


def test_revert_a_run_as_new_versions_that_say_so(ws: Workspace) -> None:
    person = Cause("person:ada", "initial")
    ws.memory.put("customers", "acme", "plan", "pro", person)
    bad = Cause("agent:sales@v1", "misread an email", "r-bad", "s")
    ws.memory.put("customers", "acme", "plan", "free", bad)
    ws.memory.put("customers", "globex", "plan", "team", bad)  # new fact from the bad run
    ws.memory.put("customers", "initech", "plan", "x", bad)
    ws.memory.put("customers", "initech", "plan", "y", Cause("person:bo", "fixed by hand"))
    written, skipped = ws.memory.revert_run("r-bad", Cause("person:ada", "corrupted memory"))
    assert len(written) == 2 and len(skipped) == 1 and "initech" in skipped[0]
    acme = ws.memory.get("customers", "acme", "plan")
    assert acme is not None and acme.value == "pro" and acme.op == "revert"
    assert acme.reverts == 1 and acme.reason == "corrupted memory"
    assert ws.memory.get("customers", "globex", "plan") is None
    initech = ws.memory.get("customers", "initech", "plan")
    assert initech is not None and initech.value == "y"
    back = ws.memory.revert_to("customers", "acme", "plan", 2, Cause("person:ada", "oops"))
    assert back.value == "free" and back.version == 4


def test_why_links_versions_to_the_step_that_caused_them(ws: Workspace) -> None:
    run_id = ws.start("learn", {"plan": "pro"})
    ws.worker().run(until_idle=True)
    ws.memory.put("customers", "acme", "plan", "pro",
                  Cause("agent:sales@v1", "from the run", run_id, "s"))
    [explained] = ws.memory.why("customers", "acme", "plan")
    kinds = {e.kind for e in explained.events}
    assert "step.transition" in kinds and "memory.put" in kinds


def test_expiry_policy_per_namespace(ws: Workspace) -> None:
    ws.memory.put("leads/2026", "bob", "stage", "warm", Cause("person:a", "met at a fair"))
    ws.memory.put("customers", "bob", "stage", "won", Cause("person:a", "signed"))
    assert ws.memory.get("leads/2026", "bob", "stage") is not None
    time.sleep(0.25)
    assert ws.memory.get("leads/2026", "bob", "stage") is None  # expired, still in history
    assert ws.memory.history("leads/2026", "bob", "stage")[0].value == "warm"
    assert ws.memory.get("customers", "bob", "stage") is not None
    assert [f.namespace for f in ws.memory.facts("*")] == ["customers"]


def test_bad_writes_change_nothing(ws: Workspace) -> None:
    with pytest.raises(InputError, match="needs a reason"):
        ws.memory.put("n", "s", "k", 1, Cause("person:a", " "))
    with pytest.raises(DeterministicError, match="may not write memory namespace 'hr'"):
        ws.memory.put("hr", "s", "k", 1, Cause("agent:a", "r"), scopes=["customers/*"])
    with pytest.raises(NotFound):
        ws.memory.history("n", "s", "k")


def test_facts_are_found_by_their_words_as_they_stand(ws: Workspace) -> None:
    ada = Cause("person:ada", "notes")
    ws.memory.put("customers", "acme", "plan", "starter", ada)
    before_upgrade = time.time()
    time.sleep(0.01)
    ws.memory.put("customers", "acme", "plan", {"name": "enterprise", "seats": 40}, ada)
    ws.memory.put("customers", "globex", "billing_contact", "Hank Scorpio", ada)
    ws.memory.put("customers", "initech", "plan", "enterprise trial", ada)
    ws.memory.forget("customers", "initech", "plan", ada)
    ws.memory.put("leads/new", "umbrella", "interest", "enterprise plan", ada)  # 0.2s TTL
    time.sleep(0.25)

    found = ws.memory.search("enterprise plan", "*")
    assert [(f.subject, f.key, f.version) for f in found] == [("acme", "plan", 2)]
    assert ws.memory.search("starter") == []  # superseded by version 2
    as_was = ws.memory.search("starter", as_of=before_upgrade)
    assert [(f.subject, f.value) for f in as_was] == [("acme", "starter")]
    assert [f.subject for f in ws.memory.search("billing contact", "customers",
                                                subject="globex")] == ["globex"]
    assert ws.memory.search("billing contact", "customers", subject="acme") == []
    assert ws.memory.search("hank", "leads/*") == []


def test_one_search_returns_documents_and_facts(ws: Workspace) -> None:
    from soloist.memory.search import search_memory

    ada = Cause("person:ada", "notes")
    ws.memory.put("customers", "acme", "renewal_date", "2027-03-01", ada)
    ws.documents.add("customers", "acme-call", "Call notes: Acme asked about the renewal "
                     "discount and wants a quote before March.", ada)
    ws.documents.add("handbook", "holidays", "The office closes in August.", ada)
    hits = search_memory(ws.memory, ws.documents, "acme renewal", "customers", 5)
    assert {(h.kind, h.key) for h in hits} == {("fact", "acme/renewal_date"),
                                               ("document", "acme-call")}
    fact = next(h for h in hits if h.kind == "fact").as_dict()
    assert fact["value"] == "2027-03-01" and fact["by"] == "person:ada"


def test_the_working_context_puts_the_facts_the_task_names_first(ws: Workspace) -> None:
    from soloist.memory.context import build

    ada = Cause("person:ada", "notes")
    ws.memory.put("customers", "acme", "refund_policy", "30 days, no questions", ada)
    for i in range(40):  # newer, unrelated, and more than the budget holds
        ws.memory.put("customers", f"c{i}", "plan", "starter", ada)
    ctx = build(instructions="Help.", task="Can Acme still get a refund?", budget=200,
                memory=ws.memory, read_scopes=["customers"])
    facts = [i.ref for i in ctx.section("facts")]
    assert facts[0] == "customers/acme/refund_policy@v1"
    assert len(facts) < 41 and ctx.left_out  # the rest did not fit, and that is recorded
