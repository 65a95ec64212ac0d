"""The workspace's own Python is imported from its own folder, never through sys.path: two
workspaces in one process each run their own ``tasks``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.control.modules import PACKAGE_PREFIX, WorkspaceModules
from soloist.errors import ConfigError, DefinitionError
from soloist.workspace import Workspace

TASKS = '''
from soloist.execution.tools.base import tool

SEEN = []

def answer(ctx):
    SEEN.append(ctx.run_id)
    return "{which}"

@tool("answer.tool")
def answer_tool() -> str:
    """Which workspace answers."""
    return "{which} tool"

{extra}
'''
PLAYBOOK = """
name: ask
steps:
  - {id: step, python: "tasks:answer"}
  - {id: tool, tool: answer.tool}
"""
ONLY_A = """
name: only
steps:
  - {id: s, python: "tasks:only_a"}
"""
TOOLS = '[tools]\nmodules = ["tasks"]\n'


def workspace(root: Path, which: str, extra: str = "") -> Path:
    return write_workspace(root, {"ask": PLAYBOOK}, TASKS.format(which=which, extra=extra),
                           toml=TOOLS)


def outputs(ws: Workspace, run_id: str) -> dict[str, object]:
    return {s.step_id: s.output for s in ws.show(run_id).steps}


def test_two_workspaces_in_one_process_each_run_their_own_tasks(tmp_path: Path) -> None:
    path_before = list(sys.path)
    root_a = workspace(tmp_path / "a", "A", "def only_a(ctx):\n    return 1\n")
    root_b = workspace(tmp_path / "b", "B")
    (root_a / "playbooks" / "only.yaml").write_text(ONLY_A)
    with Workspace(root_a) as a, Workspace(root_b) as b:
        a.deploy()
        # B has a tasks.py without only_a: checked against B's own folder, not A's.
        (root_b / "playbooks" / "only.yaml").write_text(ONLY_A)
        with pytest.raises(DefinitionError, match=r"tasks\.py defines no 'only_a'"):
            b.deploy()
        (root_b / "playbooks" / "only.yaml").unlink()
        b.deploy()
        run_a, run_b = a.start("ask"), b.start("ask")
        b.worker().run(until_idle=True)
        a.worker().run(until_idle=True)
        assert outputs(a, run_a) == {"step": "A", "tool": "A tool"}
        assert outputs(b, run_b) == {"step": "B", "tool": "B tool"}
        # What the steps ran is the module each loader hands out (the bench reads it so).
        assert a.modules.import_module("tasks").SEEN == [run_a]
        assert b.modules.import_module("tasks").SEEN == [run_b]
        assert "tasks" not in sys.modules
        assert sys.path == path_before
    assert sys.path == path_before
    # Closed, each forgets its modules.
    assert not [m for m in sys.modules if m.startswith((a.modules.package, b.modules.package))]


def test_a_workspace_without_tasks_does_not_find_another_workspaces(tmp_path: Path) -> None:
    root_a = workspace(tmp_path / "a", "A")
    root_b = write_workspace(tmp_path / "b", {"ask": PLAYBOOK.replace(
        '  - {id: tool, tool: answer.tool}\n', '')})
    with Workspace(root_a) as a, Workspace(root_b) as b:
        a.deploy()
        assert a.modules.import_module("tasks").answer_tool() == "A tool"
        with pytest.raises(DefinitionError, match="cannot import 'tasks'"):
            b.deploy()


def test_a_module_imports_its_sibling_relatively(tmp_path: Path) -> None:
    sibling = "from . import helpers\nfrom .helpers import PREFIX\n\ndef told(ctx):\n" \
              "    return PREFIX + helpers.shout('hi')\n"
    root = workspace(tmp_path / "ws", "A", sibling)
    (root / "helpers.py").write_text("PREFIX = '> '\n\ndef shout(text):\n"
                                     "    return text.upper()\n")
    (root / "playbooks" / "told.yaml").write_text(
        "name: told\nsteps:\n  - {id: s, python: \"tasks:told\"}\n")
    with Workspace(root) as ws:
        ws.deploy()
        run_id = ws.start("told")
        ws.worker().run(until_idle=True)
        assert outputs(ws, run_id) == {"s": "> HI"}
        assert "helpers" not in sys.modules  # the sibling is the workspace's, not global


def test_a_plain_import_of_a_sibling_says_how_to_write_it(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "A", "import helpers\n")
    (root / "helpers.py").write_text("X = 1\n")
    with Workspace(root) as ws, pytest.raises(ConfigError) as raised:
        ws.deploy()
    message = str(raised.value)
    assert "cannot import tool module 'tasks'" in message
    assert "tasks.py:" in message and "`from . import helpers`" in message


def test_a_python_definition_reaches_the_workspace_modules(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "A")
    (root / "steps.py").write_text("STEPS = [{'id': 's', 'python': 'tasks:answer'}]\n")
    (root / "playbooks" / "coded.py").write_text(
        "from soloist.control.playbooks import Playbook\n"
        "from ..steps import STEPS\n\n"
        "coded = Playbook.model_validate({'name': 'coded', 'steps': STEPS})\n")
    with Workspace(root) as ws:
        report = ws.deploy()
        assert ("playbook", "coded", 1) in report.deployed
        run_id = ws.start("coded")
        ws.worker().run(until_idle=True)
        assert outputs(ws, run_id) == {"s": "A"}


def test_a_definition_importing_tasks_plainly_is_told_how(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "A")
    (root / "playbooks" / "coded.py").write_text("import tasks\n")
    with Workspace(root) as ws, pytest.raises(DefinitionError) as raised:
        ws.deploy()
    assert "playbooks/coded.py:1:1: no module named 'tasks'" in str(raised.value)
    assert "(`from .. import tasks`)" in str(raised.value)


def test_a_name_the_folder_does_not_hold_is_imported_as_usual(tmp_path: Path) -> None:
    import json

    (tmp_path / "json.py").write_text("def dumps(value):\n    return 'mine'\n")
    modules = WorkspaceModules(tmp_path)
    assert modules.resolve("os.path:join") is sys.modules["os.path"].join
    own = modules.import_module("json")  # the folder's json shadows only for its workspace
    assert own.dumps(1) == "mine" and own is not json and sys.modules["json"] is json
    assert own.__name__.startswith(PACKAGE_PREFIX)
    modules.unload()
    assert not [m for m in sys.modules if m.startswith(modules.package)]
