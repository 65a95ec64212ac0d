"""The real ``soloist`` binary: a restore or a redeploy never runs or repeats the wrong thing.

What a side effect did is counted in the outside world (a file the tool appends to on every
call, whatever its key), never in the store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow

CHARGE = """
name: charge
steps:
  - id: pay
    tool: pay.charge
    args: {amount: "{{ inputs.amount }}"}
    gate: {message: "Charge {{ inputs.amount }}?"}
"""

#: A payment API that does not deduplicate: every call charges.
TOOLS = '''
from pathlib import Path

from soloist.execution.context import ToolCall
from soloist.execution.tools.base import tool


@tool("pay.charge", effect="write")
def charge(amount: float, call: ToolCall) -> dict:
    path = Path(call.workspace) / "charges.txt"
    with path.open("a") as out:
        out.write(f"{call.idempotency_key}\\t{amount}\\n")
    return {"charged": amount}
'''

NOTE = """
name: note
steps:
  - {id: write, tool: file.append, args: {path: out.txt, line: "WORD"}}
"""


def make_workspace(root: Path) -> list[str]:
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "charge.yaml").write_text(CHARGE)
    (root / "pay_tools.py").write_text(TOOLS)
    (root / "soloist.toml").write_text('[workspace]\nname = "t"\n[tools]\n'
                                       'modules = ["pay_tools"]\n')
    return ["-w", str(root)]


@contextmanager
def running(command: str, ws: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """``soloist worker`` or ``soloist up``, stopped with SIGTERM (and must exit 0)."""
    process = subprocess.Popen([SOLOIST, command, *ws], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "SOLOIST_POLL_SECONDS": "0.05",
                                    "SOLOIST_PORT": "0"})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def wait_for(ws: list[str], run_id: str, *, gate: bool = False) -> dict[str, object]:
    """The run's open approval (``gate``), or the run once it has ended."""
    deadline = time.time() + 60
    while time.time() < deadline:
        if gate:
            for item in json.loads(soloist("approvals", "--json", *ws).stdout):
                if item["approval"]["run_id"] == run_id:
                    return item  # type: ignore[no-any-return]
        else:
            run = json.loads(soloist("show", run_id, "--json", *ws).stdout)["run"]
            if run["state"] in ("done", "failed", "cancelled"):
                return run  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not get there")


def charges(root: Path) -> list[str]:
    path = root / "charges.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_reapproving_a_restored_gate_does_not_charge_again(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_workspace(root)
    soloist("deploy", *ws)
    run = json.loads(soloist("run", "charge", "--input", '{"amount": 90}', "--json",
                             *ws).stdout)
    with running("worker", ws):
        gate = wait_for(ws, run["id"], gate=True)
        soloist("snapshot", "create", "--name", "at-gate", *ws)
        soloist("approve", gate["approval"]["id"], *ws)  # type: ignore[index]
        assert wait_for(ws, run["id"])["state"] == "done"
    assert len(charges(root)) == 1
    key = charges(root)[0].split("\t")[0]

    out = soloist("snapshot", "restore", "at-gate", *ws).stdout
    assert "forgotten (happened after the snapshot" in out
    assert "intents dispatched (kept in the dispatch ledger" in out
    assert key in out and "pay.charge" in out
    assert f"{run['id']} charge (done)" in out  # the run it finished
    events = [json.loads(line) for line in soloist("log", "--json", *ws).stdout.splitlines()]
    restored = [e for e in events if e["kind"] == "snapshot.restored"]
    assert restored[-1]["data"]["forgets"]["intents"][0]["key"] == key

    listed = soloist("approvals", *ws).stdout
    assert f"!! {key} was dispatched before a restore: approving replays" in listed
    again = json.loads(soloist("approvals", "--json", *ws).stdout)
    assert [a["approval"]["id"] for a in again] == [gate["approval"]["id"]]  # type: ignore[index]
    soloist("approve", again[0]["approval"]["id"], *ws)
    with running("worker", ws):
        assert wait_for(ws, run["id"])["state"] == "done"
    assert len(charges(root)) == 1  # the payment API was not called a second time
    shown = json.loads(soloist("show", run["id"], "--json", *ws).stdout)
    assert shown["intents"][0]["status"] == "dispatched"


def test_restore_is_refused_while_a_process_runs_unless_forced(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_workspace(root)
    (root / "playbooks" / "note.yaml").write_text(NOTE)
    soloist("deploy", *ws)
    soloist("snapshot", "create", "--name", "s", *ws)
    with running("up", ws):
        run = json.loads(soloist("run", "note", "--json", *ws).stdout)
        assert wait_for(ws, run["id"])["state"] == "done"  # up is running, idle now
        refused = soloist("snapshot", "restore", "s", *ws, check=False)
        assert refused.returncode == 1
        assert "process(es) are running on this store" in refused.stderr
        assert "--force" in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert json.loads(soloist("runs", "--json", *ws).stdout)  # nothing was restored
        forced = soloist("snapshot", "restore", "s", "--force", *ws)
        assert "restored snapshot s" in forced.stdout
        assert "forced while" in forced.stderr
    assert json.loads(soloist("runs", "--json", *ws).stdout) == []
    # Stopped cleanly: nothing is alive any more, so no --force is needed.
    soloist("snapshot", "restore", "s", *ws)


def test_a_deploy_after_a_restore_takes_new_numbers_and_up_runs_the_new_content(
        tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_workspace(root)
    note = root / "playbooks" / "note.yaml"
    note.write_text(NOTE.replace("WORD", "A"))
    soloist("deploy", *ws)
    soloist("snapshot", "create", "--name", "v1", *ws)
    with running("up", ws):
        note.write_text(NOTE.replace("WORD", "B"))
        assert "deployed  playbook note v2" in soloist("deploy", *ws).stdout
        run = json.loads(soloist("run", "note", "--json", *ws).stdout)
        assert wait_for(ws, run["id"])["state"] == "done"  # up has v2 (B) in its cache
        soloist("snapshot", "restore", "v1", "--force", *ws)
        note.write_text(NOTE.replace("WORD", "C"))
        assert "deployed  playbook note v3" in soloist("deploy", *ws).stdout
        run = json.loads(soloist("run", "note", "--json", *ws).stdout)
        assert wait_for(ws, run["id"])["state"] == "done"
    lines = (root / "out.txt").read_text().splitlines()
    assert [line.split("\t")[-1] for line in lines] == ["B", "C"]
    versions = json.loads(soloist("versions", "playbook", "note", "--json", *ws).stdout)
    assert [v["version"] for v in versions] == [1, 3]


def test_rollback_warns_that_the_file_differs_and_write_makes_it_hold(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_workspace(root)
    path = root / "playbooks" / "charge.yaml"
    soloist("deploy", *ws)
    path.write_text(CHARGE.replace("Charge", "Bill"))
    soloist("deploy", *ws)
    done = soloist("rollback", "playbook", "charge", "--to", "1", *ws)
    assert "charge is now v3 (the content of v1)" in done.stdout
    assert ("warning: playbooks/charge.yaml differs from v1: the next `soloist deploy` "
            "deploys it again; pass --write") in done.stderr
    assert "deployed  playbook charge v4" in soloist("deploy", *ws).stdout  # as it warned

    done = soloist("rollback", "playbook", "charge", "--to", "1", "--write", *ws)
    assert "charge is now v5 (the content of v1)" in done.stdout
    assert "wrote v1 to playbooks/charge.yaml" in done.stdout and done.stderr == ""
    assert "Charge {{ inputs.amount }}?" in path.read_text()
    assert "unchanged playbook charge v5" in soloist("deploy", *ws).stdout

    refused = soloist("rollback", "playbook", "charge", "--to", "9", "--write", *ws,
                      check=False)
    assert refused.returncode == 1 and "has no version 9" in refused.stderr
