"""Issue 9, group 2, through the real ``soloist`` binary: secrets never in clear, a lost
key file is recoverable, and the state folder is the owner's alone."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.llm_server import LLMTestServer, Reply
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow

AGENT = """
name: helper
instructions: Answer with JSON only.
model: worker
tools: []
"""
ASK = """
name: ask
steps:
  - id: answer
    agent: helper
    task: "Say hello."
"""
# The step reads the value from a file beside it, not from the store: what a careless
# tool does with a key it was handed.
TASKS = '''
from pathlib import Path

def echo(ctx):
    value = (Path(__file__).parent / "pasted.txt").read_text()
    ctx.stage("note", {"text": "using " + value})
    return {"echo": value, "quoted": repr(value)}
'''
ECHO = """
name: echo
steps:
  - {id: a, python: "tasks:echo"}
"""
KEY = "sk-acceptance-0123456789abcdef"


@pytest.fixture
def llm() -> Iterator[LLMTestServer]:
    with LLMTestServer() as server:
        yield server


def workspace(tmp_path: Path, llm: LLMTestServer) -> Path:
    toml = (f'[llm.providers.p]\nkind = "openai"\nbase_url = "{llm.openai_base_url}"\n'
            'api_key = "secret:llm_key"\ntimeout = 5\n[llm.tiers]\nworker = "p:m"\n')
    root = write_workspace(tmp_path / "ws", {"ask": ASK, "echo": ECHO}, TASKS, toml=toml)
    (root / "agents").mkdir()
    (root / "agents" / "helper.yaml").write_text(AGENT)
    soloist("deploy", "-w", str(root))
    return root


def set_secret(root: Path, name: str, value: str,
               check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([SOLOIST, "secret", "set", name, "-w", str(root)], input=value,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SOLOIST_ACTOR": "tester"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def run_and_wait(root: Path, playbook: str) -> dict[str, object]:
    """Run ``playbook`` to its end with a worker of its own (``run --wait`` waits)."""
    up = subprocess.Popen([SOLOIST, "up", "-w", str(root)],
                          env={**os.environ, "SOLOIST_POLL_SECONDS": "0.05",
                               "SOLOIST_PORT": "0"},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = soloist("run", playbook, "--wait", "--timeout", "60", "--json",
                       "-w", str(root), check=False)
        run: dict[str, object] = json.loads(done.stdout)
        return run
    finally:
        up.terminate()
        up.wait(30)


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_lost_key_file_is_explained_and_recovered_from(tmp_path: Path,
                                                         llm: LLMTestServer) -> None:
    root = workspace(tmp_path, llm)
    ws = ["-w", str(root)]
    set_secret(root, "llm_key", KEY)
    (root / ".soloist" / "secret.key").unlink()

    assert soloist("runs", *ws).returncode == 0
    listed = json.loads(soloist("secret", "list", "--json", *ws).stdout)
    assert [s["name"] for s in listed] == ["llm_key"]
    run = run_and_wait(root, "ask")
    assert run["state"] == "failed"
    error = str(run["error"])
    assert "secret key file" in error and "missing" in error and "1 stored" in error
    assert "soloist secret delete" in error
    assert llm.requests == []  # nothing was sent without the key

    refused = one_sentence(set_secret(root, "other", "value-other-123", check=False))
    assert "missing" in refused and "soloist secret delete" in refused
    missing = one_sentence(soloist("secret", "delete", "nope", *ws, check=False))
    assert "no secret named 'nope'" in missing

    soloist("secret", "delete", "llm_key", *ws)
    assert json.loads(soloist("secret", "list", "--json", *ws).stdout) == []
    set_secret(root, "llm_key", KEY)
    llm.add(Reply('{"greeting": "hello"}'))
    run = run_and_wait(root, "ask")
    assert run["state"] == "done", run
    [sent] = llm.requests
    assert sent.headers["authorization"] == f"Bearer {KEY}"  # the value, not the name
    log = soloist("log", *ws).stdout
    assert "secret.deleted" in log and KEY not in log


def test_a_short_value_is_refused_at_set(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    refused = one_sentence(set_secret(root, "pin", "1234", check=False))
    assert "shorter than 8 characters" in refused
    assert json.loads(soloist("secret", "list", "--json", "-w", str(root)).stdout) == []


def test_a_secret_set_while_up_runs_is_never_stored_in_clear(tmp_path: Path,
                                                             llm: LLMTestServer) -> None:
    root = workspace(tmp_path, llm)
    ws = ["-w", str(root)]
    value = '-----BEGIN KEY-----\nAbC"d\\e/f\tgh é\n-----END KEY-----'
    (root / "pasted.txt").write_text("nothing to hide yet")
    up = subprocess.Popen([SOLOIST, "up", *ws],
                          env={**os.environ, "SOLOIST_POLL_SECONDS": "0.05"},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        soloist("run", "echo", "--wait", "--json", *ws)  # the worker is warm
        set_secret(root, "pasted", value)  # and at once, before any reload:
        (root / "pasted.txt").write_text(value)
        run = json.loads(soloist("run", "echo", "--wait", "--json", *ws).stdout)
        assert run["state"] == "done"
    finally:
        up.terminate()
        up.wait(30)
    shown = soloist("show", str(run["id"]), "--json", *ws).stdout
    assert json.loads(shown)["steps"][0]["output"]["echo"] == "[secret:pasted]"
    texts = [shown, soloist("log", "--json", *ws).stdout]
    con = sqlite3.connect(root / ".soloist" / "state.db")
    try:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in con.execute(f'SELECT * FROM "{table}"'):
                texts.extend(str(v) for v in row)
    finally:
        con.close()
    text = "\n".join(texts)
    for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
                 repr(value)[1:-1], "AbC", "gh é"):
        assert form not in text, form


def test_the_state_folder_is_private(tmp_path: Path) -> None:
    root = tmp_path / "company"
    soloist("init", str(root))
    ws = ["-w", str(root)]
    soloist("deploy", *ws)
    set_secret(root, "api", "value-123456")
    soloist("snapshot", "create", "--name", "first", *ws)
    state = root / ".soloist"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert (state / "state.db").exists() and (state / "secret.key").exists()
