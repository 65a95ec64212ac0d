"""A restore or a redeploy never runs or repeats the wrong thing (issue 9, group 5).

Every test runs on SQLite and PostgreSQL. What a side effect did is counted in the outside
world (a file the tool appends to, whatever it was asked), never in the store.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from soloist.control.processes import Presence, alive
from soloist.errors import InputError, InvalidState
from soloist.memory.facts import Cause
from soloist.store.base import DefinitionRow
from soloist.workspace import Workspace

CHARGE = """
name: charge
steps:
  - id: pay
    tool: pay.charge
    args: {amount: "{{ inputs.amount }}"}
    gate: {message: "Charge {{ inputs.amount }}?"}
"""

#: A payment API that does not deduplicate: every call charges, whatever its key.
TOOLS = '''
from pathlib import Path

from soloist.execution.context import ToolCall
from soloist.execution.tools.base import tool


@tool("pay.charge", effect="write")
def charge(amount: float, call: ToolCall) -> dict:
    path = Path(call.workspace) / "charges.txt"
    with path.open("a") as out:
        out.write(f"{call.idempotency_key}\\t{amount}\\n")
    return {"charged": amount, "receipt": len(path.read_text().splitlines())}


@tool("pay.refund", effect="write")
def refund(amount: float, call: ToolCall) -> dict:
    path = Path(call.workspace) / "refunds.txt"
    with path.open("a") as out:
        out.write(f"{call.idempotency_key}\\t{amount}\\n")
    return {"refunded": amount}
'''

REFUNDED = """
name: refunded
steps:
  - id: pay
    tool: pay.charge
    args: {amount: "{{ inputs.amount }}"}
    compensate: {tool: pay.refund, args: {amount: "{{ inputs.amount }}"}}
  - {id: confirm, gate: true}
"""


def charging_workspace(root: Path) -> Path:
    module = f"pay_{uuid.uuid4().hex[:8]}"  # each test imports its own copy
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "charge.yaml").write_text(CHARGE)
    (root / f"{module}.py").write_text(TOOLS)
    (root / "soloist.toml").write_text(
        f'[workspace]\nname = "t"\n[tools]\nmodules = ["{module}"]\n')
    return root


def charges(root: Path, name: str = "charges.txt") -> list[str]:
    path = root / name
    return path.read_text().splitlines() if path.exists() else []


def test_reapproving_a_restored_gate_replays_the_charge_instead_of_charging_again(
        tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("charge", {"amount": 90})
        ws.worker().run(until_idle=True)
        [gate] = ws.approvals()
        ws.snapshots.create("person:a", "at-gate")
        ws.approve(gate.approval.id)
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert len(charges(root)) == 1
        first = ws.show(run_id).intents[0]
        ws.memory.put("customers", "acme", "paid", True, Cause("person:a", "paid"))
        ws.documents.add("notes", "acme", "Acme paid on time.", Cause("person:a", "note"))
        later = ws.start("charge", {"amount": 5})

        report = ws.snapshots.restore("at-gate", "person:a")

        gone = report.forgotten
        assert [i["key"] for i in gone.intents] == [first.idempotency_key]
        assert gone.intents[0]["tool"] == "pay.charge"
        assert [r["run"] for r in gone.runs_started] == [later]
        assert [r["run"] for r in gone.runs_finished] == [run_id]
        assert [(f["subject"], f["key"]) for f in gone.facts] == [("acme", "paid")]
        event = ws.log()[-1]
        assert event.kind == "snapshot.restored"
        assert [(d["namespace"], d["key"]) for d in gone.documents] == [("notes", "acme")]
        assert event.data["forgets"]["counts"] == {"intents": 1, "runs_started": 1,
                                                   "runs_finished": 1, "facts": 1,
                                                   "documents": 1}
        assert event.data["forgets"]["intents"][0]["key"] == first.idempotency_key

        [again] = ws.approvals()  # the store is back at the gate...
        assert again.approval.id == gate.approval.id
        assert again.dispatched == [first.idempotency_key]  # the person is told
        assert gate.dispatched == []
        ws.approve(again.approval.id)
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert len(charges(root)) == 1  # ...but the world is not: no second charge
        replayed = ws.show(run_id).intents[0]
        assert replayed.status == "dispatched" and replayed.result == first.result
        assert ws.verify().ok


def test_a_new_charge_after_a_restore_is_still_made(tmp_path: Path, db_url: str) -> None:
    """The ledger recognises keys, not tools: another run's charge goes through."""
    root = charging_workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ws.snapshots.create("person:a", "empty")
        ws.start("charge", {"amount": 1})
        ws.worker().run(until_idle=True)
        ws.approve(ws.approvals()[0].approval.id)
        ws.worker().run(until_idle=True)
        ws.snapshots.restore("empty", "person:a")
        ws.start("charge", {"amount": 2})
        ws.worker().run(until_idle=True)
        ws.approve(ws.approvals()[0].approval.id)
        ws.worker().run(until_idle=True)
        assert [line.split("\t")[1] for line in charges(root)] == ["1.0", "2.0"]


def test_versions_never_repeat_across_a_restore(tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    path = root / "playbooks" / "charge.yaml"
    with Workspace(root, database_url=db_url) as ws:
        assert ws.deploy().deployed == [("playbook", "charge", 1), ("policies", "policies", 1)]
        ws.snapshots.create("person:a", "v1")
        path.write_text(CHARGE.replace("Charge", "Bill"))
        assert ws.deploy().deployed == [("playbook", "charge", 2)]
        old = ws.registry.latest_playbook("charge")  # what a long-running worker cached
        ws.snapshots.restore("v1", "person:a")
        path.write_text(CHARGE.replace("Charge", "Invoice"))
        assert ws.deploy().deployed == [("playbook", "charge", 3)]
        assert ws.rollback("playbook", "charge", 1).version == 4
        assert [r.version for r in ws.history("playbook", "charge")] == [1, 3, 4]
        # A process that cached v2 before the restore is handed the content each run pinned.
        path.write_text(CHARGE.replace("Charge", "Pay"))
        ws.deploy()
        run_id = ws.start("charge", {"amount": 3})
        run = ws.get_run(run_id)
        pinned = ws.registry.pinned_digest(run.pins)
        assert pinned is not None
        current = ws.registry.playbook("charge", run.playbook_version, pinned)
        assert current.steps[0].gate is not None and old.steps[0].gate is not None
        assert current.steps[0].gate.message.startswith("Pay")
        assert old.steps[0].gate.message.startswith("Bill")


def test_the_definition_cache_is_keyed_by_content(tmp_path: Path, db_url: str) -> None:
    """Even if a store came back without its ledger and a number were given again, a
    process that cached the old content runs what each run pinned, or what the store has."""
    root = charging_workspace(tmp_path / "ws")
    path = root / "playbooks" / "charge.yaml"
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ws.snapshots.create("person:a", "v1")
        path.write_text(CHARGE.replace("Charge", "Bill"))
        ws.deploy()
        stale = ws.registry.playbook("charge", 2)
        ws.snapshots.restore("v1", "person:a")
        path.write_text(CHARGE.replace("Charge", "Pay"))
        with ws.store.transaction() as tx:  # v2 again, past the version marks
            fresh = registry_row(root, "Pay")
            tx.registry.insert(fresh)
        run = ws.get_run(ws.start("charge", {"amount": 1}))
        assert run.playbook_version == 2
        pinned = ws.registry.pinned_digest(run.pins)
        assert pinned == fresh.digest
        for found in (ws.registry.playbook("charge", 2, pinned),
                      ws.registry.playbook("charge", 2)):
            assert found is not stale and found.steps[0].gate is not None
            assert found.steps[0].gate.message.startswith("Pay")
        with pytest.raises(InvalidState, match="no longer the content this run started"):
            ws.registry.playbook("charge", 2, "0" * 64)


def registry_row(root: Path, word: str) -> DefinitionRow:
    from soloist.control.registry import _bodies, digest

    [(kind, name, body, source)] = [b for b in _bodies(root) if b[0] == "playbook"]
    assert word in str(body)
    return DefinitionRow(kind, name, 2, digest(body), body, source, "test", time.time(), None)


def test_restore_refuses_while_a_worker_or_scheduler_process_is_alive(
        tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ws.snapshots.create("person:a", "s")
        worker = Presence(ws.store, "host:1:abcd", "worker", 30.0)
        worker.beat()  # an idle worker: no lease held
        with pytest.raises(InvalidState, match=r"1 worker or scheduler process\(es\) are "
                                               r"running .*worker host:1:abcd seen 0s "
                                               r"ago.*--force"):
            ws.snapshots.restore("s", "person:a")
        worker.leave()
        scheduler = Presence(ws.store, "host:1:abcd/scheduler", "scheduler", 15.0)
        scheduler.beat()
        with pytest.raises(InvalidState, match="scheduler host:1:abcd/scheduler"):
            ws.snapshots.restore("s", "person:a")
        report = ws.snapshots.restore("s", "person:a", force=True)
        assert [p["id"] for p in report.alive] == ["host:1:abcd/scheduler"]
        assert ws.log()[-1].data["forced"] is True
        # The registry is no part of the snapshot: the live process is still known.
        assert [p["id"] for p in alive(ws.store)] == ["host:1:abcd/scheduler"]
        scheduler.leave()
        # A process that died without leaving is taken for gone after two of its periods.
        dead = Presence(ws.store, "host:2:dead", "worker", 1.0)
        dead.beat(time.time() - 10)
        ws.snapshots.restore("s", "person:a")


def test_a_worker_is_registered_while_it_runs_and_gone_after_a_clean_stop(
        tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        worker = ws.worker(name="w-test")
        seen: list[list[str]] = []
        ws.start("charge", {"amount": 1})
        original = worker.runner.execute

        def spy(job):  # type: ignore[no-untyped-def]
            seen.append([p["id"] for p in alive(ws.store)])
            return original(job)

        worker.runner.execute = spy  # type: ignore[method-assign]
        worker.run(until_idle=True)
        assert seen == [["w-test"]]
        assert alive(ws.store) == []


def test_rollback_says_the_file_differs_and_write_puts_the_version_back(
        tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    path = root / "playbooks" / "charge.yaml"
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        path.write_text(CHARGE.replace("Charge", "Bill"))
        ws.deploy()
        report = ws.rollback("playbook", "charge", 1)
        assert report.version == 3 and not report.written
        assert report.warning is not None
        assert "playbooks/charge.yaml differs from v1" in report.warning
        assert "next `soloist deploy` deploys it again" in report.warning
        assert "--write" in report.warning
        assert "Bill" in path.read_text()  # nothing written unless asked

        # The rollback is deployed, so --write now writes the file and deploys nothing.
        report = ws.rollback("playbook", "charge", 1, write=True)
        assert (report.version, report.deployed, report.written) == (3, False, True)
        assert "Charge {{ inputs.amount }}?" in path.read_text()
        assert ws.deploy().deployed == []
        with pytest.raises(InvalidState, match="v3 is already the same as v1"):
            ws.rollback("playbook", "charge", 1)

        path.write_text(CHARGE.replace("Charge", "Pay"))
        ws.deploy()  # v4
        report = ws.rollback("playbook", "charge", 1, write=True)
        assert report.version == 5 and report.written and report.warning is None
        assert "Charge {{ inputs.amount }}?" in path.read_text()
        assert ws.deploy().deployed == []  # the file now is v1: the rollback holds
        # When the file already holds the rolled-back content, there is nothing to say.
        path.write_text(CHARGE.replace("Charge", "Bill"))
        ws.deploy()  # v6, "Bill" (the content of v2)
        path.write_text(CHARGE)
        assert ws.rollback("playbook", "charge", 5).warning is None


def test_rollback_write_follows_a_file_that_moved(tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    path = root / "playbooks" / "charge.yaml"
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        moved = root / "playbooks" / "billing.yaml"
        path.rename(moved)
        moved.write_text(CHARGE.replace("Charge", "Bill"))
        ws.deploy()
        report = ws.rollback("playbook", "charge", 1, write=True)
        assert report.written and report.source == "playbooks/billing.yaml"
        assert not path.exists() and "Charge" in moved.read_text()
        assert ws.deploy().deployed == []


def test_rollback_write_refuses_what_is_not_yaml_before_changing_anything(
        tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    (root / "agents").mkdir()
    (root / "agents" / "helper.py").write_text(
        "from soloist.control.agents import Agent\n\n"
        "helper = Agent(name='helper', instructions='one')\n")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        if not ws.history("agent", "helper"):
            pytest.skip("Python agents are not loaded from agents/*.py here")
        (root / "agents" / "helper.py").write_text(
            (root / "agents" / "helper.py").read_text().replace("one", "two"))
        ws.deploy()
        with pytest.raises(InputError, match="--write can only write YAML"):
            ws.rollback("agent", "helper", 1, write=True)
        assert [r.version for r in ws.history("agent", "helper")] == [1, 2]


def test_a_restore_takes_away_what_memory_indexed_since(tmp_path: Path, db_url: str) -> None:
    """Tables made after the snapshot (PostgreSQL's vector index) go with the restore: no
    vector of a forgotten document answers a search afterwards, and the restore works."""
    root = charging_workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.snapshots.create("person:a", "blank")
        ws.documents.add("notes", "acme", "Acme paid the invoice on time.",
                         Cause("person:a", "note"))
        assert ws.documents.search("invoice paid")
        ws.snapshots.restore("blank", "person:a")
        assert ws.documents.search("invoice paid") == []
        ws.documents.add("notes", "globex", "Globex asked for a discount.",
                         Cause("person:a", "note"))
        hits = ws.documents.search("discount")
        assert [h.chunk.doc_key for h in hits] == ["globex"]
    with Workspace(root, database_url=db_url) as again:  # and the store opens as ever
        assert [h.chunk.doc_key for h in again.documents.search("discount")] == ["globex"]


@pytest.mark.parametrize("embedded_before", [False, True])
def test_vectors_held_in_memory_are_loaded_anew_after_a_restore(
        tmp_path: Path, db_url: str, embedded_before: bool) -> None:
    """Chunk ids start again from the snapshot's: a process's vectors from before the
    restore would stand for other chunks, so it loads them anew (from either side of the
    store's first embedded document)."""
    root = charging_workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        if ws.documents.embedder is None:
            pytest.skip("no local embedding model installed")
        if embedded_before:
            ws.documents.add("notes", "first", "A first note.", Cause("person:a", "note"))
        ws.snapshots.create("person:a", "s")
        ws.documents.add("notes", "acme", "Acme paid the invoice.", Cause("person:a", "n"))
        ws.documents._vectors()  # this process now holds the vectors of the store as it is
        ws.snapshots.restore("s", "person:a")
        ws.documents.add("notes", "globex", "Globex wants a discount.", Cause("person:a", "n"))
        cache = ws.documents._vectors()
        with ws.store.read() as tx:
            stored = dict((i, v) for i, _, v in tx.documents.vectors(cache.model))
        assert sorted(stored) == sorted(int(i) for i in cache._ids[: cache.n])
        for chunk_id, blob in stored.items():
            row = cache._matrix[cache._row_of[chunk_id]]
            assert row.tobytes() == blob  # each id's vector is its chunk's, none stale


def test_rollback_write_round_trips_every_definition_of_the_example(
        tmp_path: Path, db_url: str) -> None:
    """Whatever a definition uses (triggers, durations, gates, compensation, schemas,
    grants, rules), the file --write makes deploys to the very version it came from."""
    from soloist.interfaces.cli.scaffold import write_example

    root = tmp_path / "co"
    write_example(root)
    with Workspace(root, database_url=db_url) as ws:
        first = ws.deploy().deployed
        files = sorted([*root.glob("playbooks/*.yaml"), *root.glob("agents/*.yaml"),
                        root / "policies.yaml"])
        for file in files:
            text = file.read_text()
            changed = text.replace("description: ", "description: changed ", 1)
            if changed == text:
                changed = text.replace("reason: ", "reason: changed ", 1)
            assert changed != text, file
            file.write_text(changed)
        assert len(ws.deploy().deployed) == len(first)
        for kind, name, version in first:
            report = ws.rollback(kind, name, version, write=True)
            assert report.written and report.warning is None, (kind, name)
        assert ws.deploy().deployed == []


def test_a_run_whose_pinned_content_is_gone_fails_and_runs_nothing(
        tmp_path: Path, db_url: str) -> None:
    from soloist.orchestration.runs import StartRequest, start_run

    root = charging_workspace(tmp_path / "ws")
    (root / "playbooks" / "note.yaml").write_text(
        "name: note\nsteps:\n  - {id: w, tool: file.append, args: {path: out.txt, line: x}}\n")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        playbook = ws.registry.latest_playbook("note")
        with ws.store.transaction() as tx:  # pinned to a content the store does not have
            run_id = start_run(tx, StartRequest(playbook, {}, {"test": "t"}, "test",
                                                pins={"playbook_digest": "0" * 64}))
        ws.worker().run(until_idle=True)  # and the worker lives on
        run = ws.get_run(run_id)
        assert run.state == "failed" and "no longer the content this run started" in (
            run.error or "")
        assert not (root / "out.txt").exists()


def test_a_compensation_done_before_a_restore_is_not_done_again(
        tmp_path: Path, db_url: str) -> None:
    root = charging_workspace(tmp_path / "ws")
    (root / "playbooks" / "refunded.yaml").write_text(REFUNDED)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("refunded", {"amount": 7})
        ws.worker().run(until_idle=True)
        [gate] = ws.approvals()  # charged, waiting for the confirmation
        assert len(charges(root)) == 1
        ws.snapshots.create("person:a", "charged")
        ws.reject(gate.approval.id, "the customer cancelled")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "failed"
        assert len(charges(root, "refunds.txt")) == 1

        ws.snapshots.restore("charged", "person:a")
        [again] = ws.approvals()
        ws.reject(again.approval.id, "the customer cancelled")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "failed"
        assert len(charges(root)) == 1
        assert len(charges(root, "refunds.txt")) == 1  # refunded once, not twice
