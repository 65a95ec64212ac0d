"""``soloist deploy`` refuses what would only fail in a run, and no file can make it hang.

The real binary, run with a timeout: a refused deploy exits 1 with one sentence per
problem (``error: file:line:col: ...``), no traceback, and nothing new is deployed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow

DEPLOY_TIMEOUT = 60  # a deploy that hangs fails the test instead of the suite

# A "billion laughs": each line holds nine of the line before, 9**9 values in ~450 bytes.
LAUGHS = ("name: lol\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
          + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                    for p, c in zip("abcdefgh", "bcdefghi", strict=True))
          + "steps: [{id: a, tool: note, args: {text: *i}}]\n")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "company"
    soloist("init", str(root))
    soloist("deploy", "-w", str(root))
    return root


def deploy(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SOLOIST, "deploy", "-w", str(root)], capture_output=True, text=True,
                          timeout=DEPLOY_TIMEOUT, env={**os.environ, "SOLOIST_ACTOR": "tester"})


def versions(root: Path) -> str:
    return soloist("versions", "--json", "-w", str(root)).stdout


CASES = {
    "recursive alias": ("name: x\nsteps: &a [*a, *a, *a, *a, *a, *a]\n",
                        "playbooks/bad.yaml:2:12: the alias *a is inside the value it names"),
    "billion laughs": (LAUGHS, "playbooks/bad.yaml:7:12: the file expands to more than 200000 "
                       "values"),
    "NUL character": ("name: x\nsteps: [{id: a, tool: note, args: {text: \"\x00\"}}]\n",
                      "playbooks/bad.yaml:2:"),
    "deep nesting": ("name: x\nsteps: [{id: a, tool: note, args: {x: " + "[" * 5000 + "]" * 5000
                     + "}}]\n", "playbooks/bad.yaml:2:"),
    "unknown tool": ("name: x\nsteps:\n  - id: a\n    tool: nope\n",
                     "playbooks/bad.yaml:4:11: steps.0.tool: no tool named 'nope' (did you mean "
                     "'note'?)"),
    "missing function": ("name: x\nsteps:\n  - {id: a, python: \"tasks:nothing\"}\n",
                         "playbooks/bad.yaml:3:21: steps.0.python: tasks.py defines no "
                         "'nothing'"),
    "later step": ("name: x\nsteps:\n  - {id: a, tool: note, args: {text: "
                   "\"{{ steps.b.output }}\"}}\n  - {id: b, tool: note, args: {text: b}}\n",
                   "playbooks/bad.yaml:3:38: steps.0.args.text: template '{{ steps.b.output }}' "
                   "reads steps.b, which has not run when step 'a' runs"),
    "priority too large": ("name: x\npriority: 99999999999\nsteps: [{id: a, tool: note}]\n",
                           "playbooks/bad.yaml:2:11: priority: input should be less than or "
                           "equal to 2147483647"),
    "zero deadline": ("name: x\nbudget: {deadline: 0s}\nsteps: [{id: a, tool: note}]\n",
                      "playbooks/bad.yaml:2:20: budget.deadline: '0s' is no time at all"),
}


@pytest.mark.parametrize("text, expected", CASES.values(), ids=list(CASES))
def test_a_refused_deploy_is_one_sentence_and_changes_nothing(
        workspace: Path, text: str, expected: str) -> None:
    before = versions(workspace)
    (workspace / "playbooks" / "bad.yaml").write_text(text, encoding="utf-8")
    result = deploy(workspace)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {expected}"), lines[0]
    assert versions(workspace) == before


def test_a_syntax_error_in_a_python_step_module_is_shown_at_its_line(workspace: Path) -> None:
    (workspace / "steps_code.py").write_text("def go(ctx):\n    return {'a': 1\n\nx = 2\n")
    (workspace / "playbooks" / "bad.yaml").write_text(
        "name: x\nsteps:\n  - {id: a, python: \"steps_code:go\"}\n")
    result = deploy(workspace)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: playbooks/bad.yaml:3:21: steps.0.python: cannot import "
                           "'steps_code': steps_code.py:2:"), line
    assert "syntax error" in line


def test_every_problem_is_listed_at_once(workspace: Path) -> None:
    before = versions(workspace)
    (workspace / "playbooks" / "bad.yaml").write_text(
        "name: x\nbudget: {deadline: 0s}\nsteps:\n"
        "  - {id: a, tool: notee}\n"
        "  - {id: b, tool: note, args: {text: \"{{ inptus.x }}\"}}\n")
    (workspace / "playbooks" / "worse.yaml").write_text("name: y\nsteps: &s [*s]\n")
    result = deploy(workspace)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "playbooks/bad.yaml:2:20", "playbooks/bad.yaml:4:19", "playbooks/bad.yaml:5:38",
        "playbooks/worse.yaml:2:12"], lines
    assert versions(workspace) == before


def test_the_example_workspace_and_an_mcp_tool_of_a_configured_server_deploy(
        workspace: Path) -> None:
    toml = workspace / "soloist.toml"
    toml.write_text(toml.read_text() + '\n[mcp.servers.files]\ncommand = ["true"]\n')
    (workspace / "playbooks" / "mcp.yaml").write_text(
        "name: mcp-read\nsteps: [{id: a, tool: mcp.files.read, args: {path: x}}]\n")
    result = deploy(workspace)
    assert result.returncode == 0, result.stderr
    assert "deployed  playbook mcp-read v1" in result.stdout


def test_a_syntax_error_in_a_tool_module_is_one_sentence_with_its_place(
        workspace: Path) -> None:
    before = versions(workspace)
    tasks = workspace / "tasks.py"
    lines = tasks.read_text().count("\n")
    tasks.write_text(tasks.read_text() + "def oops(:\n    pass\n")
    result = deploy(workspace)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot import tool module 'tasks'"), line
    assert f"tasks.py:{lines + 1}: syntax error: invalid syntax" in line, line
    tasks.write_text(tasks.read_text().replace("def oops(:\n    pass\n", ""))
    assert versions(workspace) == before
