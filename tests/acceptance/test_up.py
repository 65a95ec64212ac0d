"""``soloist up``: workers, the scheduler and the web server in one process, stopped by
SIGTERM."""

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
    up = subprocess.Popen([SOLOIST, "up", "--no-web", *ws], env={**os.environ},
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


def test_up_serves_the_api_and_signs_in_by_its_one_time_link(tmp_path: Path) -> None:
    import httpx

    root = write_workspace(tmp_path / "ws", {"first": FIRST})
    ws = ["-w", str(root)]
    soloist("deploy", *ws)
    token = soloist("token", "create", "ci", "--scope", "run", *ws).stdout.strip()
    up = subprocess.Popen([SOLOIST, "up", "--port", "0", "-q", *ws], env={**os.environ},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert up.stdout is not None
        lines = [up.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("soloist up:")
        base = lines[1].split(" at ", 1)[1].split(" ", 1)[0]
        assert base.startswith("http://127.0.0.1:")
        link = lines[2].rsplit(" ", 1)[1].strip()
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/api/v1/runs").status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            started = client.post("/api/v1/runs", json={"playbook": "first",
                                                         "inputs": {"n": 3}}, headers=bearer)
            assert started.status_code == 201, started.text
            run_id = started.json()["run_id"]
            signed = client.get(link, follow_redirects=False)
            assert signed.status_code == 303
            deadline = time.time() + 30
            state = ""
            while time.time() < deadline and state != "done":
                state = client.get(f"/api/v1/runs/{run_id}").json()["run"]["state"]
                time.sleep(0.1)
            assert state == "done"  # the worker in the same process ran it
            assert client.get(link, follow_redirects=False).status_code == 401  # once
            # the live stream: from the start of the log, each event once, in order
            kinds: list[str] = []
            with client.stream("GET", "/api/v1/events/stream",
                               params={"after": 0, "run_id": run_id}) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        kinds.append(line.removeprefix("event: "))
                    if "run.done" in kinds:
                        break
            assert kinds[0] == "run.created" and kinds[-1] == "run.done"
    finally:
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=30)
    assert up.returncode == 0, err
    assert token not in out + err


def test_up_says_when_its_port_is_taken(tmp_path: Path) -> None:
    import socket

    root = write_workspace(tmp_path / "ws", {"first": FIRST})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = soloist("up", "--port", str(port), "-w", str(root), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port}: it is in "
                                     "use; choose another with --port (or [api] port in "
                                     "soloist.toml)")
