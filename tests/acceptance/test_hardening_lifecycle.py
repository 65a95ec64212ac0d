"""A failed compensation goes to a person, through the real ``soloist`` binary."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow

TASKS = '''
from pathlib import Path

from soloist.errors import DeterministicError

HERE = Path(__file__).parent


def boom(ctx):
    raise ValueError("the customer disappeared")


def void(ctx, which):
    if (HERE / f"{which}.broken").exists():
        raise DeterministicError(f"the ledger refused to void {which}")
    with open(HERE / "voided.txt", "a") as handle:
        handle.write(which + "\\n")
    return {"voided": which}
'''

PLAYBOOK = """
name: charge
inputs: {type: object, properties: {which: {type: string}}}
steps:
  - id: charge
    tool: note
    args: {text: "charge {{ inputs.which }}"}
    compensate: {python: "tasks:void", args: {which: "{{ inputs.which }}"}}
  - {id: fail, python: "tasks:boom"}
"""


def wait_for(ws: list[str], run_id: str) -> dict[str, object]:
    deadline = time.time() + 30
    while time.time() < deadline:
        for item in json.loads(soloist("approvals", "--json", *ws).stdout):
            if item["approval"]["run_id"] == run_id:
                return item  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never asked a person")


def state_of(ws: list[str], run_id: str, wanted: set[str]) -> dict[str, object]:
    deadline = time.time() + 30
    while time.time() < deadline:
        run = json.loads(soloist("show", run_id, "--json", *ws).stdout)["run"]
        if run["state"] in wanted:
            return run  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {wanted}")


def test_a_failed_compensation_is_retried_resolved_or_given_up_by_a_person(
        tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"charge": PLAYBOOK}, TASKS)
    ws = ["-w", str(root)]
    soloist("deploy", *ws)
    for which in ("ada", "bob", "cy"):
        (root / f"{which}.broken").write_text("")
    started = {which: json.loads(soloist("run", "charge", "--input",
                                         json.dumps({"which": which}), "--json",
                                         *ws).stdout)["id"]
               for which in ("ada", "bob", "cy")}
    worker = subprocess.Popen([SOLOIST, "worker", *ws],
                              env={**os.environ, "SOLOIST_POLL_SECONDS": "0.05"})
    try:
        gates = {which: wait_for(ws, run_id) for which, run_id in started.items()}
        listing = soloist("approvals", *ws).stdout
        assert "compensation" in listing
        assert "Undoing step charge (python tasks:" in listing
        assert "the ledger refused to void ada" in listing
        assert state_of(ws, started["ada"], {"compensating"})

        refused = soloist("cancel", started["ada"], *ws, check=False)
        assert refused.returncode == 1
        assert f"soloist approve {gates['ada']['approval']['id']}" in (
            refused.stdout + refused.stderr)
        assert "Traceback" not in refused.stderr

        # ada: the ledger is back, retry; bob: voided by hand; cy: give up.
        (root / "ada.broken").unlink()
        soloist("approve", gates["ada"]["approval"]["id"], "--note", "ledger is back", *ws)
        soloist("resolve", gates["bob"]["approval"]["id"], "--note", "voided in the UI", *ws)
        soloist("reject", gates["cy"]["approval"]["id"], "--reason", "too small", *ws)
        ada = state_of(ws, started["ada"], {"done", "failed", "cancelled"})
        bob = state_of(ws, started["bob"], {"done", "failed", "cancelled"})
        cy = state_of(ws, started["cy"], {"done", "failed", "cancelled"})
    finally:
        worker.terminate()
        assert worker.wait(30) == 0
    assert ada["state"] == bob["state"] == cy["state"] == "failed"
    assert "given up" not in str(ada["error"])
    assert "undone by hand by person:tester: voided in the UI" in str(bob["error"])
    assert "given up by person:tester: too small" in str(cy["error"])
    assert (root / "voided.txt").read_text().split() == ["ada"]
    out = soloist("log", "--run", started["cy"], "--json", *ws).stdout
    log = [json.loads(line) for line in out.splitlines() if line.strip()]  # JSON lines
    decided = [e for e in log if e["kind"] == "compensation.decided"]
    assert [e["data"]["decision"] for e in decided] == ["give_up"]
    assert json.loads(soloist("approvals", "--json", *ws).stdout) == []
    assert "chain intact" in soloist("audit", "verify", *ws).stdout
