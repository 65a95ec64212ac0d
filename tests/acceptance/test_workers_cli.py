"""``soloist workers`` and ``soloist workers drain`` with two real ``soloist worker``
processes on one store: the drained one finishes the steps in its hands and exits 0, the
other carries on, every run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.workers import ready, start_worker
from support.workspaces import HOLD_TASKS, write_workspace

import soloist
from soloist.workspace import Workspace

pytestmark = pytest.mark.slow

RUNS = 6
PLAYBOOK = """
name: slow
inputs: {type: object, properties: {gate: {type: string}}}
steps:
  - {id: a, python: "tasks:hold", args: {gate: "{{ inputs.gate }}"}}
  - {id: b, tool: file.append, args: {path: effects.txt, line: "{{ run.id }}"}, needs: [a]}
"""
TASKS = HOLD_TASKS


def until(check: Callable[[], Any], what: str, seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return found


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soloist.interfaces.cli.app", *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_drained_worker_exits_0_after_its_steps_and_the_other_carries_on(
        tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"slow": PLAYBOOK}, TASKS)
    gate = tmp_path / "open"
    # The spawned processes run the sources under test.
    env = {**os.environ, "SOLOIST_DATABASE_URL": db_url, "SOLOIST_LEASE_SECONDS": "6",
           "SOLOIST_POLL_SECONDS": "0.05", "SOLOIST_WORKSPACE": str(root),
           "PYTHONPATH": str(Path(soloist.__file__).parents[1])}
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        runs = [ws.start("slow", {"gate": str(gate)}) for _ in range(RUNS)]
        first, second = start_worker(root, env, 2), start_worker(root, env, 2)
        try:
            until(lambda: ready(root, first) and ready(root, second), "both workers ready")

            def listed() -> list[dict[str, Any]] | None:
                out = cli(env, "workers", "--json")
                assert out.returncode == 0, out.stderr
                rows: list[dict[str, Any]] = json.loads(out.stdout)
                held = sorted((w["pid"], w["steps_in_hand"]) for w in rows)
                return rows if held == sorted([(first.pid, 2), (second.pid, 2)]) else None

            rows = until(listed, "both workers listed with two steps in hand each")
            assert all(w["version"] and w["host"] and not w["draining"] for w in rows)
            [victim] = [w["id"] for w in rows if w["pid"] == first.pid]
            table = cli(env, "workers")
            assert table.returncode == 0 and str(first.pid) in table.stdout

            elsewhere = {k: v for k, v in env.items() if k != "SOLOIST_WORKSPACE"}
            hostile = cli(elsewhere, "workers", "-w", str(root), "drain", "nope")
            assert hostile.returncode == 1
            assert hostile.stderr.strip().splitlines() == [
                "error: no live worker has an id starting with 'nope' (soloist workers "
                "lists them)"]
            asked = cli(env, "workers", "drain", victim.rsplit(":", 1)[0])  # a prefix
            assert asked.returncode == 0, asked.stderr
            assert victim in asked.stdout
            until(lambda: f"worker {victim}: asked to drain" in
                  (root / "workers.log").read_text(), "the drain seen by the worker")
            assert first.poll() is None  # its two steps still hold it
            gate.touch()
            assert first.wait(timeout=90) == 0
            until(lambda: all(ws.get_run(r).state == "done" for r in runs), "every run done")
        finally:
            gate.touch()
            for worker in (first, second):
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=60) for worker in (first, second)]
        assert codes == [0, 0]
        log = (root / "workers.log").read_text()
        assert log.count(f"worker {victim} drained") == 1
        events = ws.log(limit=100_000)
        moves = [e for e in events if e.kind == "step.transition"]
        # The drained worker ran the two steps it held, all the way, and nothing else.
        mine = [e for e in moves if e.actor == victim]
        assert len([e for e in mine if e.data["to"] == "executing"]) == 2
        assert not [e for e in mine if e.data["to"] == "ready"]
        assert not [e for e in events if e.kind == "lease.refused"]
        lines = (root / "effects.txt").read_text().splitlines()
        keys = [line.split("\t")[0] for line in lines]  # each run's effect, once
        assert sorted(keys) == sorted(f"{r}/b/0" for r in runs)
        [drain] = [e for e in events if e.kind == "worker.drain"]
        assert drain.data["worker"] == victim and drain.data["pid"] == first.pid


def test_a_drained_soloist_up_exits_0_with_its_scheduler(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"slow": PLAYBOOK}, TASKS)
    env = {**os.environ, "SOLOIST_DATABASE_URL": db_url, "SOLOIST_LEASE_SECONDS": "6",
           "SOLOIST_WORKSPACE": str(root), "PYTHONPATH": str(Path(soloist.__file__).parents[1])}
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        up = subprocess.Popen([sys.executable, "-m", "soloist.interfaces.cli.app", "up",
                               "--no-web", "-q"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        try:
            [row] = until(ws.workers, "the worker of soloist up")
            assert row.pid == up.pid

            def roles() -> bool:
                with ws.store.read() as tx:
                    return [p["role"] for p in tx.scheduler.workers(0)] == ["worker",
                                                                            "scheduler"]

            until(roles, "its scheduler alive beside it")
            asked = cli(env, "workers", "drain", row.id)
            assert asked.returncode == 0, asked.stderr
            _, err = up.communicate(timeout=90)
        finally:
            if up.poll() is None:
                up.send_signal(signal.SIGTERM)
                up.communicate(timeout=60)
        assert up.returncode == 0
        assert err.count("drained") == 1, err
        with ws.store.read() as tx:
            assert tx.scheduler.workers(0) == []  # the scheduler left with the worker
