"""The CLI's contract with a person (issue 9, groups 1 and 9): exit codes that mean what
they say, one sentence for every mistake, nothing accepted silently, and what a newcomer
trips on. Every test runs the real ``soloist`` binary."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow

GATED = """
name: gated
inputs:
  type: object
  properties: {amount: {type: number}}
steps:
  - {id: draft, tool: note, args: {text: "draft {{ inputs.amount }}"}}
  - id: send
    tool: note
    args: {text: "send {{ inputs.amount }}"}
    gate: {message: "Send {{ inputs.amount }}?"}
"""
FAILING = """
name: failing
steps:
  - {id: boom, python: "tasks:refuse"}
"""
CRASHING = """
name: crashing
steps:
  - {id: boom, python: "tasks:crash"}
"""
SLOW = """
name: slow
steps:
  - {id: a, tool: sleep, args: {seconds: 3}}
"""
PLAIN = """
name: plain
steps:
  - {id: a, tool: note, args: {text: "hello"}}
"""
TASKS = '''
from soloist.errors import DeterministicError


def refuse(ctx):
    raise DeterministicError("the customer Ada has no address on file")


def crash(ctx):
    return {"total": 1 / 0}
'''
FAST = {"SOLOIST_PORT": "0", "SOLOIST_POLL_SECONDS": "0.05"}


def run_args(root: Path) -> list[str]:
    return ["-w", str(root)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = write_workspace(tmp_path / "ws", {"gated": GATED, "failing": FAILING,
                                             "crashing": CRASHING, "plain": PLAIN,
                                             "slow": SLOW},
                           tasks=TASKS, toml='[tools]\nmodules = ["tasks"]\n')
    soloist("deploy", *run_args(path))
    return path


@pytest.fixture
def worker(root: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([SOLOIST, "worker", *run_args(root)], env={**os.environ, **FAST},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    """The error a person reads: one line on stderr, no traceback, no Python class name."""
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for name in ("Error(", "NotFound:", "InputError", "DeterministicError", "ConfigError"):
        assert name not in err, err
    return err


# -- 1. exit codes --------------------------------------------------------------------

def test_every_exit_code_means_what_it_says(root: Path, worker: object) -> None:
    ws = run_args(root)
    assert soloist("--version").stdout.startswith("soloist ")
    assert soloist("runs", *ws).returncode == 0
    usage = soloist("runs", "--no-such-flag", *ws, check=False)
    assert usage.returncode == 2
    mistake = soloist("run", "nope", *ws, check=False)
    assert mistake.returncode == 1 and "nope" in one_sentence(mistake)

    late = soloist("run", "slow", "--wait", "--timeout", "0.5", *ws, check=False)
    assert late.returncode == 5 and "still running" in one_sentence(late)
    done = soloist("run", "plain", "--wait", "--timeout", "60", *ws, check=False)
    assert done.returncode == 0 and " done" in done.stdout
    failed = soloist("run", "failing", "--wait", "--timeout", "60", *ws, check=False)
    assert failed.returncode == 3 and " failed" in failed.stdout
    waiting = soloist("run", "gated", "--input", '{"amount": 90}', "--wait", "--timeout", "60",
                      *ws, check=False)
    assert waiting.returncode == 4, waiting.stdout + waiting.stderr
    [approval] = json.loads(soloist("approvals", "--json", *ws).stdout)
    approval_id = approval["approval"]["id"]
    assert f"soloist approve {approval_id}" in waiting.stdout
    assert "step send" in waiting.stdout
    again = json.loads(soloist("run", "gated", "--input", '{"amount": 1}', "--wait", "--json",
                               *ws, check=False).stdout)
    assert again["state"] == "running" and len(again["waiting_for"]) == 1
    soloist("approve", approval_id, *ws)

    assert soloist("audit", "verify", *ws).returncode == 0
    db = root / ".soloist" / "state.db"
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER events_no_update")
    con.execute("UPDATE events SET data = '{\"forged\": true}' WHERE seq = 3")
    con.commit()
    con.close()
    broken = soloist("audit", "verify", *ws, check=False)
    assert broken.returncode == 1 and "BROKEN at event 3" in broken.stdout
    assert "Exit codes:" in soloist("--help").stdout


# -- 2. one sentence instead of an internal error ---------------------------------------

def test_a_broken_tasks_module_does_not_lock_a_person_out(root: Path) -> None:
    ws = run_args(root)
    run = json.loads(soloist("run", "gated", "--input", '{"amount": 5}', "--json", *ws).stdout)
    worker = subprocess.Popen([SOLOIST, "worker", *ws], env={**os.environ, **FAST},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        approval = wait_for_approval(ws, run["id"])
    finally:
        worker.terminate()
        assert worker.wait(30) == 0
    other = json.loads(soloist("run", "plain", "--json", *ws).stdout)
    module = root / "tasks.py"
    module.write_text(module.read_text() + "\ndef broken(:\n")
    line = len(module.read_text().splitlines())

    for args in (["runs"], ["show", run["id"]], ["log", "--run", run["id"]], ["approvals"],
                 ["versions"], ["metrics"], ["audit", "verify"],
                 ["memory", "get", "n", "s", "k"], ["memory", "facts"]):
        result = soloist(*args, *ws, check=False)
        assert result.returncode in (0, 1), (args, result.stderr)
        assert "tasks" not in result.stderr and "internal error" not in result.stderr, args
    soloist("reject", approval["approval"]["id"], "--reason", "not now", *ws)
    soloist("cancel", other["id"], *ws)

    for command in ("worker", "up"):
        proc = subprocess.run([SOLOIST, command, *ws], capture_output=True, text=True,
                              timeout=60, env={**os.environ, **FAST})
        assert proc.returncode == 1
        err = one_sentence(proc)
        assert f"{module}:{line}: syntax error" in err and "[tools] modules" in err
        assert "soloist up:" not in proc.stdout  # said before the banner


def test_init_on_a_file_or_an_impossible_path(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for target in (afile, afile / "sub"):
        result = soloist("init", str(target), check=False)
        assert result.returncode == 1
        assert str(target) in one_sentence(result)
    assert afile.read_text() == "x"


def test_a_priority_too_large_for_the_store_is_refused(root: Path) -> None:
    ws = run_args(root)
    for priority in (str(2**31), str(-(2**31) - 1), str(2**63)):
        result = soloist("run", "plain", "--priority", priority, *ws, check=False)
        assert result.returncode == 1 and "priority" in one_sentence(result)
    assert json.loads(soloist("runs", "--json", *ws).stdout) == []
    soloist("run", "plain", "--priority", str(2**31 - 1), *ws)


# -- 3. nothing accepted silently -------------------------------------------------------

def test_unknown_states_and_runs_are_named(root: Path) -> None:
    ws = run_args(root)
    bogus = soloist("runs", "--state", "bogus", *ws, check=False)
    assert bogus.returncode == 1
    assert "running" in one_sentence(bogus) and "done" in bogus.stderr
    for args in (["log", "--run", "r-nope"], ["memory", "revert", "--run", "r-nope",
                                              "--reason", "undo"]):
        result = soloist(*args, *ws, check=False)
        assert result.returncode == 1 and "no run 'r-nope'" in one_sentence(result), args


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_at_every_door(root: Path, tmp_path: Path,
                                                      number: str) -> None:
    ws = run_args(root)
    result = soloist("run", "gated", "--input", f'{{"amount": {number}}}', *ws, check=False)
    assert result.returncode == 1 and number in one_sentence(result)
    put = soloist("memory", "put", "n", "s", "k", f'{{"v": {number}}}', "--reason", "r", *ws,
                  check=False)
    assert put.returncode == 1 and number in one_sentence(put)
    lines = tmp_path / "facts.jsonl"
    lines.write_text(f'{{"namespace": "n", "subject": "s", "key": "k", "value": {number}}}\n')
    imported = soloist("memory", "import", str(lines), *ws, check=False)
    assert imported.returncode == 1 and f"{lines}:1:" in imported.stderr
    assert json.loads(soloist("runs", "--json", *ws).stdout) == []
    assert soloist("memory", "get", "n", "s", "k", *ws, check=False).returncode == 1


def test_input_files_are_capped_and_must_be_utf8(root: Path, tmp_path: Path) -> None:
    ws = run_args(root)
    started = time.monotonic()
    endless = soloist("run", "plain", "--input", "@/dev/urandom", *ws, check=False)
    assert endless.returncode == 1 and "1 MiB" in one_sentence(endless)
    assert time.monotonic() - started < 30
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"customer": "Ren\xe9"}')
    result = soloist("run", "plain", "--input", f"@{latin}", *ws, check=False)
    assert result.returncode == 1 and "not UTF-8" in one_sentence(result)
    for source, problem in (("/dev/urandom", "is not a file"), (str(latin), "not UTF-8")):
        imported = soloist("memory", "import", source, *ws, check=False)
        assert imported.returncode == 1 and problem in one_sentence(imported)


# -- 4. a person reads sentences, the log keeps the kind --------------------------------

def test_step_failures_read_as_sentences(root: Path, worker: object) -> None:
    ws = run_args(root)
    failed = json.loads(soloist("run", "failing", "--wait", "--timeout", "60", "--json", *ws,
                                check=False).stdout)
    assert failed["error"] == "step boom failed: the customer Ada has no address on file"
    events = [json.loads(line) for line in soloist("log", "--run", failed["id"], "--json",
                                                   *ws).stdout.splitlines()]
    [moved] = [e for e in events if e["kind"] == "step.transition"
               and e["data"].get("to") == "failed"]
    assert moved["data"]["kind"] == "deterministic"
    crashed = json.loads(soloist("run", "crashing", "--wait", "--timeout", "60", "--json", *ws,
                                 check=False).stdout)
    # The workspace's own code raised: its exception type is part of what it means.
    assert crashed["error"] == "step boom failed: ZeroDivisionError: division by zero"


# -- 9. what a newcomer trips on --------------------------------------------------------

def test_up_says_what_happens_and_quiet_silences_it(root: Path) -> None:
    ws = run_args(root)
    for quiet in (False, True):
        up = subprocess.Popen([SOLOIST, "up", *ws, *(["-q"] if quiet else [])],
                              env={**os.environ, **FAST}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        assert up.stdout is not None
        banner = up.stdout.readline()
        # the banner's other lines: where the dashboard is, and the link that signs in
        served = [up.stdout.readline().split(" ")[0] for _ in range(2)]
        try:
            done = json.loads(soloist("run", "plain", "--wait", "--timeout", "60", "--json",
                                      *ws).stdout)
            failed = json.loads(soloist("run", "failing", "--wait", "--timeout", "60", "--json",
                                        *ws, check=False).stdout)
            gated = soloist("run", "gated", "--input", '{"amount": 1}', "--wait", *ws,
                            check=False)
            assert gated.returncode == 4
            time.sleep(1.5)  # the narrator reads the log twice a second
        finally:
            up.send_signal(signal.SIGTERM)
            out, err = up.communicate(timeout=30)
        assert up.returncode == 0, err
        assert banner.startswith("soloist up:")
        assert served == ["dashboard", "sign"]
        if quiet:
            assert out == ""
            continue
        said = out
        assert f"started   {done['id']} plain v1" in said
        assert f"done      {done['id']}" in said
        assert f"failed    {failed['id']}: step boom failed: the customer Ada" in said
        assert "waiting   " in said and "soloist approve a-" in said


def test_commands_find_the_workspace_from_a_subfolder(root: Path) -> None:
    deep = root / "playbooks" / "notes"
    deep.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SOLOIST_WORKSPACE"}
    result = subprocess.run([SOLOIST, "versions", "--json"], cwd=deep, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {r["name"] for r in json.loads(result.stdout)} >= {"plain", "gated"}


def test_metrics_is_a_table_and_json_keeps_the_data(root: Path) -> None:
    ws = run_args(root)
    shown = soloist("metrics", *ws).stdout
    assert "completion rate" in shown and "{" not in shown
    assert set(json.loads(soloist("metrics", "--json", *ws).stdout)) >= {
        "runs", "completion_rate", "cost_per_successful_outcome_usd"}
    assert soloist("metrics", "--days", "0", *ws, check=False).returncode == 1


def test_help_shows_flags_as_flags() -> None:
    for args in (["--help"], ["runs", "--help"], ["run", "--help"], ["up", "--help"]):
        shown = soloist(*args, env={"COLUMNS": "200"}).stdout
        assert "<bool>" not in shown, args
        assert "--help" in shown


def test_read_only_commands_import_neither_the_engine_nor_the_workspace_code(
        root: Path) -> None:
    run = json.loads(soloist("run", "gated", "--input", '{"amount": 3}', "--json",
                             *run_args(root)).stdout)
    probe = """
import sys
from soloist.interfaces.cli.app import main
sys.argv = ["soloist", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = ("soloist.execution.llm", "soloist.execution.tools.mcp", "soloist.memory.embeddings",
         "soloist.execution.steps", "soloist.orchestration.worker", "onnxruntime", "httpx")
print("LOADED", [m for m in sys.modules if m.startswith(heavy) or m.split(".")[-1] == "tasks"
                 or m.startswith("_soloist_workspace_")])
"""
    for args in (["runs"], ["show", run["id"]], ["approvals"], ["log"], ["versions"],
                 ["metrics"]):
        result = subprocess.run([sys.executable, "-c", probe, *args, "-w", str(root)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "LOADED []", (args, result.stdout)


def wait_for_approval(ws: list[str], run_id: str) -> dict[str, object]:
    deadline = time.time() + 60
    while time.time() < deadline:
        for item in json.loads(soloist("approvals", "--json", *ws).stdout):
            if item["approval"]["run_id"] == run_id:
                return dict(item)
        time.sleep(0.1)
    raise AssertionError(f"no approval for {run_id}")
