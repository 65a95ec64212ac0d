"""The real ``soloist`` binary, as a person would use it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests_support import SOLOIST, soloist


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "company"
    soloist("init", str(root))
    soloist("deploy", "-w", str(root))
    return root


def test_help_is_fast_and_lists_commands() -> None:
    out = soloist("--help").stdout
    for command in ("init", "deploy", "run", "worker", "up", "approvals", "audit"):
        assert command in out


def test_gate_approved_from_the_cli_completes(workspace: Path) -> None:
    ws = ["-w", str(workspace)]
    run = json.loads(soloist("run", "invoice", "--input",
                             '{"customer": "Ada", "hours": 2}', "--json", *ws).stdout)
    worker = subprocess.Popen([SOLOIST, "worker", *ws], env={**os.environ,
                              "SOLOIST_POLL_SECONDS": "0.05"})
    try:
        for _ in range(2):  # send, then acknowledged
            approval = wait_for_approval(ws, run["id"])
            soloist("approve", approval["approval"]["id"], "--note", "ok", *ws)
        final = wait_for_state(ws, run["id"], {"done", "failed"})
        assert final == "done"
    finally:
        worker.terminate()
        assert worker.wait(30) == 0  # SIGTERM: finish or release, exit 0
    shown = json.loads(soloist("show", run["id"], "--json", *ws).stdout)
    assert [s["state"] for s in shown["steps"]] == ["done"] * 4
    assert shown["approvals"][0]["decided_by"] == "person:tester"
    assert "Ada" in (workspace / "ledger.tsv").read_text()
    assert "chain intact" in soloist("audit", "verify", *ws).stdout


def test_rejected_run_fails_and_compensates(workspace: Path) -> None:
    ws = ["-w", str(workspace)]
    run = json.loads(soloist("run", "invoice", "--input",
                             '{"customer": "Bob", "hours": 1}', "--json", *ws).stdout)
    worker = subprocess.Popen([SOLOIST, "worker", *ws], env={**os.environ,
                              "SOLOIST_POLL_SECONDS": "0.05"})
    try:
        soloist("approve", wait_for_approval(ws, run["id"])["approval"]["id"], *ws)
        second = wait_for_approval(ws, run["id"])
        soloist("reject", second["approval"]["id"], "--reason", "disputed", *ws)
        assert wait_for_state(ws, run["id"], {"done", "failed"}) == "failed"
    finally:
        worker.terminate()
        worker.wait(30)
    ledger = (workspace / "ledger.tsv").read_text()
    assert "Bob\t90.00" in ledger and "Bob\t-90.00\tvoid" in ledger


def wait_for_approval(ws: list[str], run_id: str) -> dict[str, object]:
    import time

    deadline = time.time() + 30
    seen: set[str] = set()
    while time.time() < deadline:
        for item in json.loads(soloist("approvals", "--json", *ws).stdout):
            if item["approval"]["run_id"] == run_id and item["approval"]["id"] not in seen:
                return item  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached a gate")


def wait_for_state(ws: list[str], run_id: str, wanted: set[str]) -> str:
    import time

    deadline = time.time() + 30
    while time.time() < deadline:
        state = json.loads(soloist("show", run_id, "--json", *ws).stdout)["run"]["state"]
        if state in wanted:
            return str(state)
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {wanted}")


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope"], "no playbook named 'nope'"),
    (["run", "invoice", "--input", "{bad"], "--input is not valid JSON"),
    (["run", "invoice", "--input", "[1]"], "must be a JSON object"),
    (["run", "invoice", "--input", '{"customer": ""}'], "input for playbook 'invoice' is "
                                                        "invalid"),
    (["show", "r-missing"], "no run 'r-missing'"),
    (["approve", "a-missing"], "no approval 'a-missing'"),
])
def test_user_mistakes_are_one_sentence(workspace: Path, args: list[str], message: str) -> None:
    result = soloist(*args, "-w", str(workspace), check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_yaml_is_reported_with_line_and_column_and_nothing_is_deployed(
        workspace: Path) -> None:
    path = workspace / "playbooks" / "invoice.yaml"
    path.write_text(path.read_text().replace("retry: {max_attempts: 5", "retry: {max_attempts: x"))
    broken = workspace / "playbooks" / "broken.yaml"
    broken.write_text("name: broken\nsteps:\n  - id: a\n    pythn: x:y\n")
    result = soloist("deploy", "-w", str(workspace), check=False)
    assert result.returncode == 1
    assert "playbooks/broken.yaml:4:5:" in result.stderr
    assert "Traceback" not in result.stderr
    runs = soloist("deploy", "--json", "-w", str(workspace), check=False)
    assert runs.returncode == 1
    history = json.loads(soloist("runs", "--json", "-w", str(workspace)).stdout)
    assert history == []


def test_not_a_workspace_and_unreachable_database(tmp_path: Path) -> None:
    result = soloist("runs", "-w", str(tmp_path), check=False)
    assert result.returncode == 1 and "is not a Soloist workspace" in result.stderr
    root = tmp_path / "ws"
    soloist("init", str(root))
    result = soloist("runs", "-w", str(root), check=False,
                     env={"SOLOIST_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_memory_from_the_cli(workspace: Path) -> None:
    ws = ["-w", str(workspace)]
    soloist("memory", "put", "customers", "acme", "plan", '{"name": "pro"}', "--reason",
            "signed", *ws)
    soloist("memory", "put", "customers", "acme", "plan", "team", "--reason", "upgraded", *ws)
    assert soloist("memory", "get", "customers", "acme", "plan", *ws).stdout.strip() == '"team"'
    history = json.loads(soloist("memory", "history", "customers", "acme", "plan", "--json",
                                 *ws).stdout)
    assert [(h["version"], h["reason"], h["actor"]) for h in history] == [
        (1, "signed", "person:tester"), (2, "upgraded", "person:tester")]
    assert "v2" in soloist("memory", "why", "customers", "acme", "plan", *ws).stdout
    back = soloist("memory", "revert", "customers", "acme", "plan", "--to", "1", "--reason",
                   "the upgrade was a mistake", *ws).stdout
    assert "customers/acme/plan is now v3 (the value of v1)" in back
    assert json.loads(soloist("memory", "get", "customers", "acme", "plan", *ws).stdout) == {
        "name": "pro"}
    neither = soloist("memory", "revert", "--reason", "x", *ws, check=False)
    assert neither.returncode == 2 and "give either --run RUN_ID" in neither.stderr
    missing = soloist("memory", "get", "customers", "nobody", "plan", *ws, check=False)
    assert missing.returncode == 1 and "has no current value" in missing.stderr


def test_snapshots_from_the_cli(workspace: Path) -> None:
    ws = ["-w", str(workspace)]
    soloist("memory", "put", "n", "s", "k", "1", "--reason", "first", *ws)
    assert "snapshot keep" in soloist("snapshot", "create", "--name", "keep", *ws).stdout
    soloist("memory", "put", "n", "s", "k", "2", "--reason", "second", *ws)
    listed = json.loads(soloist("snapshot", "list", "--json", *ws).stdout)
    assert [s["name"] for s in listed] == ["keep"]
    soloist("snapshot", "restore", "keep", *ws)
    assert soloist("memory", "get", "n", "s", "k", *ws).stdout.strip() == "1"


def test_memory_import_and_export(workspace: Path, tmp_path: Path) -> None:
    ws = ["-w", str(workspace)]
    good = tmp_path / "facts.jsonl"
    good.write_text('{"namespace": "customers", "subject": "acme", "key": "plan", '
                    '"value": "pro"}\n\n{"type": "document", "namespace": "notes", '
                    '"key": "faq", "text": "Refunds within 30 days."}\n')
    out = soloist("memory", "import", str(good), *ws).stdout
    assert "imported 1 fact(s) and 1 document(s)" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"namespace": "x", "subject": "s", "key": "k", "value": 1}\n{oops\n')
    result = soloist("memory", "import", str(bad), *ws, check=False)
    assert result.returncode == 1 and f"{bad}:2: not JSON" in result.stderr
    assert soloist("memory", "get", "x", "s", "k", *ws, check=False).returncode == 1
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "a.md").write_text("# Pricing\n\nThe pro plan costs 90 EUR.")
    assert "1 document(s)" in soloist("memory", "import", str(notes), "--namespace",
                                      "handbook", *ws).stdout
    records = [json.loads(line) for line in
               soloist("memory", "export", *ws).stdout.strip().splitlines()]
    assert [(r["type"], r["namespace"], r["key"]) for r in records] == [
        ("fact", "customers", "plan"), ("document", "handbook", "sub/a.md"),
        ("document", "notes", "faq")]
    assert records[0]["value"] == "pro" and records[2]["text"] == "Refunds within 30 days."
    # What export writes, import takes again: into a fresh workspace, the same memory.
    exported = tmp_path / "export.jsonl"
    exported.write_text("".join(json.dumps(r) + "\n" for r in records))
    other = tmp_path / "other"
    soloist("init", str(other))
    assert "imported 1 fact(s) and 2 document(s)" in soloist(
        "memory", "import", str(exported), "-w", str(other)).stdout
    assert soloist("memory", "document", "handbook", "sub/a.md", "-w",
                   str(other)).stdout.strip() == "# Pricing\n\nThe pro plan costs 90 EUR."


def test_a_document_version_and_its_history(workspace: Path, tmp_path: Path) -> None:
    ws = ["-w", str(workspace)]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "terms.md").write_text("Refunds within 14 days.")
    soloist("memory", "import", str(notes), "--namespace", "legal", *ws)
    (notes / "terms.md").write_text("Refunds within 30 days.")
    soloist("memory", "import", str(notes), "--namespace", "legal", *ws)
    read = ["memory", "document", "legal", "terms.md"]
    assert soloist(*read, *ws).stdout.strip() == "Refunds within 30 days."
    assert soloist(*read, "--version", "1", *ws).stdout.strip() == "Refunds within 14 days."
    versions = json.loads(soloist(*read, "--history", "--json", *ws).stdout)
    assert [(v["version"], v["reason"]) for v in versions] == [
        (1, "import notes"), (2, "import notes")]
    table = soloist(*read, "--history", *ws).stdout
    assert "v1" in table and "v2" in table
    missing = soloist(*read, "--version", "3", *ws, check=False)
    assert missing.returncode == 1
    assert "legal/terms.md has versions 1 to 2, not 3" in missing.stderr
    early = soloist(*read, "--as-of", "2020-01-01", *ws, check=False)
    assert early.returncode == 1 and "did not exist yet then" in early.stderr


def test_memory_search_status_and_reembed(workspace: Path, tmp_path: Path) -> None:
    ws = ["-w", str(workspace)]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "refunds.md").write_text("Refunds are granted within 30 days of purchase.")
    (notes / "pricing.md").write_text("The pro plan costs 90 EUR a month.")
    soloist("memory", "import", str(notes), "--namespace", "handbook", *ws)
    hits = json.loads(soloist("memory", "search", "how long do customers have for a refund",
                              "--namespace", "handbook", "--k", "1", "--json", *ws).stdout)
    assert [h["key"] for h in hits] == ["refunds.md"]
    table = soloist("memory", "search", "pro plan price", *ws).stdout
    assert "handbook/" in table and "90 EUR" in table
    soloist("memory", "put", "handbook", "policy", "refund_window", "30 days", "--reason",
            "from the terms", *ws)
    both = json.loads(soloist("memory", "search", "refund window", "--json", *ws).stdout)
    assert {(h["kind"], h["key"]) for h in both} >= {("fact", "policy/refund_window"),
                                                    ("document", "refunds.md")}
    before = soloist("memory", "search", "refund window", "--as-of", "2020-01-01", "--json",
                     *ws).stdout
    assert "policy/refund_window" not in before  # the fact did not exist yet
    bad = soloist("memory", "search", "refund", "--since", "last week", *ws, check=False)
    assert bad.returncode != 0 and "'last week' is not a date" in bad.stderr
    status = json.loads(soloist("memory", "status", "--json", *ws).stdout)
    assert status["chunks"] == 2 and status["reembed_needed"] is False
    assert "re-embedded 0 chunk(s)" in soloist("memory", "reembed", *ws).stdout
