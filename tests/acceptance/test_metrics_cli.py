"""``soloist metrics``: the five measures as a table and as JSON, over a window (``--since``,
or ``--days`` as before) and for one playbook, from the real binary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.runs import drain
from support.workspaces import write_workspace
from tests_support import soloist

from soloist.workspace import Workspace

PLAIN = """
name: plain
steps:
  - {id: a, python: "tasks:noop"}
"""
BROKEN = """
name: broken
steps:
  - {id: x, python: "tasks:boom"}
"""
TASKS = '''
def noop(ctx):
    return {"ok": True}

def boom(ctx):
    raise ValueError("bad input")
'''


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = write_workspace(tmp_path / "ws", {"plain": PLAIN, "broken": BROKEN}, TASKS)
    with Workspace(path) as ws:
        ws.deploy("person:test")
        for playbook, end in (("plain", "done"), ("plain", "done"), ("broken", "failed")):
            drain(ws, ws.start(playbook), end)
    return path


def test_all_five_measures_as_a_table_and_as_json(root: Path) -> None:
    ws = ["-w", str(root)]
    shown = soloist("metrics", "--since", "7", *ws, env={"COLUMNS": "200"}).stdout
    for measure in ("completion rate", "mean time to recovery",
                    "human interventions per 100 runs", "cost per successful outcome",
                    "change lead time"):
        assert measure in shown, measure
    assert "last 7 days" in shown and "66.7%" in shown and "playbook plain" in shown
    figures = json.loads(soloist("metrics", "--json", *ws).stdout)
    assert figures["runs"] == {"done": 2, "failed": 1} and figures["days"] == 30
    assert figures["unrecovered"] == 1 and figures["recoveries"] == 0
    assert {c["name"] for c in figures["changes"]} >= {"plain", "broken"}
    only = json.loads(soloist("metrics", "--days", "1", "--playbook", "plain", "--json",
                              *ws).stdout)
    assert only["runs"] == {"done": 2} and only["completion_rate"] == 1.0
    assert [p["playbook"] for p in only["by_playbook"]] == ["plain"]


def test_a_bad_window_or_playbook_is_one_sentence(root: Path) -> None:
    ws = ["-w", str(root)]
    for args, message in ((["--since", "0"], "days must be positive"),
                          (["--playbook", "nope"], "no playbook named 'nope'")):
        result = soloist("metrics", *args, *ws, check=False)
        assert result.returncode == 1, result
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
