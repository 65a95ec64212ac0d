"""``soloist up``: workers and the scheduler in one process, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

FIRST = """
name: first
steps:
  - {id: a, tool: note, args: {text: "first {{ inputs.n }}"}}
"""
FOLLOW = """
name: follow
triggers:
  - event: run.completed.first
    inputs: {n: "{{ event.payload.inputs.n }}"}
steps:
  - {id: b, tool: file.append, args: {path: followed.txt, line: "after {{ inputs.n }}"}}
"""


def test_up_runs_steps_and_event_triggers_then_stops_cleanly(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"first": FIRST, "follow": FOLLOW})
    ws = ["-w", str(root)]
    soloist("deploy", *ws)
    up = subprocess.Popen([SOLOIST, "up", *ws], env={**os.environ},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = json.loads(soloist("run", "first", "--input", '{"n": 7}', "--wait", "--json",
                                 *ws).stdout)
        assert run["state"] == "done"
        deadline = time.time() + 30
        follow: list[dict[str, object]] = []
        while time.time() < deadline:
            follow = json.loads(soloist("runs", "--playbook", "follow", "--json", *ws).stdout)
            if follow and follow[0]["state"] == "done":
                break
            time.sleep(0.1)
        assert follow and follow[0]["state"] == "done"
        assert follow[0]["trigger"]["source_run"] == run["id"]
        assert "after 7" in (root / "followed.txt").read_text()
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 0


def test_rollback_from_the_cli(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"first": FIRST})
    ws = ["-w", str(root)]
    soloist("deploy", *ws)
    path = root / "playbooks" / "first.yaml"
    path.write_text(path.read_text().replace("first {{", "second {{"))
    assert "deployed  playbook first v2" in soloist("deploy", *ws).stdout
    assert "v3 (the content of v1)" in soloist("rollback", "playbook", "first", "--to", "1",
                                               *ws).stdout
    result = soloist("rollback", "playbook", "first", "--to", "9", *ws, check=False)
    assert result.returncode == 1 and "has no version 9" in result.stderr
