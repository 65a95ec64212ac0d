"""Kill a worker at random moments: every run still finishes and no effect happens twice.

Two ``soloist worker`` processes share one store. One of them is SIGKILLed again and
again while 200 three-step runs (one side effect each) are processed, and restarted each
time. Afterwards every run is done and the effects file holds each idempotency key
exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from support.workers import ready, start_worker
from support.workspaces import write_workspace

from soloist.orchestration.runs import StartRequest, start_run
from soloist.workspace import Workspace

RUNS = 200

# Kills are aimed at a worker while it holds leases, so one step may be under it more than
# the three times after which a step counts as poison (a test of its own): here each step
# may go round as often as the kills can make it.
PLAYBOOK = """
name: crash
steps:
  - {id: a, python: "tasks:pause", args: {ms: 40}, retry: {max_attempts: 30}}
  - {id: b, tool: file.append, args: {path: effects.txt, line: "{{ run.id }}"},
     retry: {max_attempts: 30}}
  - {id: c, python: "tasks:pause", args: {ms: 40}, retry: {max_attempts: 30}}
"""
TASKS = """
import time

def pause(ctx, ms):
    time.sleep(ms / 1000)
    return {"slept": ms}
"""


def holds_lease(ws: Workspace, worker: subprocess.Popen[bytes], until: float) -> bool:
    """Wait until ``worker`` holds the lease of some step (or ``until`` passes)."""
    marker = f":{worker.pid}:"
    while time.time() < until:
        with ws.store.read() as tx:
            leased = tx.steps.expired(time.time() + 86400, 1000)
        if any(marker in (row.lease_owner or "") for row in leased):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_sigkilled_worker_loses_nothing_and_repeats_nothing(tmp_path: Path,
                                                            db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"crash": PLAYBOOK}, TASKS)
    env = {**os.environ, "SOLOIST_DATABASE_URL": db_url, "SOLOIST_LEASE_SECONDS": "1",
           "SOLOIST_POLL_SECONDS": "0.05"}
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        playbook = ws.registry.latest_playbook("crash")
        with ws.store.transaction() as tx:
            for _ in range(RUNS):
                start_run(tx, StartRequest(playbook, {}, {"test": "crash"}, "test"))

        rng = random.Random(1234)
        steady = start_worker(root, env)
        victim = start_worker(root, env)
        kills = 0
        deadline = time.time() + 240
        try:
            while time.time() < deadline:
                time.sleep(rng.uniform(0.4, 1.0))  # past start-up, into work
                if kills < 12:
                    # On a loaded machine a new worker may not have claimed anything yet;
                    # a kill counts only when it leaves a lease behind.
                    holds_lease(ws, victim, time.time() + 10)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    victim = start_worker(root, env)
                with ws.store.read() as tx:
                    counts = tx.runs.count_by_state()
                if counts.get("done", 0) == RUNS:
                    break
        finally:
            # SIGTERM stops a worker cleanly once it says it is ready (before, it kills it).
            ready_by = time.time() + 60
            while not all(ready(root, proc) for proc in (steady, victim)) \
                    and time.time() < ready_by:
                time.sleep(0.05)
            for proc in (steady, victim):
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(60) for proc in (steady, victim)]
        with ws.store.read() as tx:
            counts = tx.runs.count_by_state()
        assert counts == {"done": RUNS}, counts
        assert codes == [0, 0], (root / "workers.log").read_text()[-2000:]
        assert ready(root, steady) and ready(root, victim)
        assert kills >= 5
        lines = (root / "effects.txt").read_text().splitlines()
        keys = Counter(line.split("\t")[0] for line in lines)
        assert len(keys) == RUNS
        assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
        assert ws.verify().ok
        reclaimed = [e for e in ws.log(limit=1_000_000) if e.kind == "step.transition"
                     and "expired" in str(e.data.get("reason", ""))]
        assert reclaimed, "the kills should have left expired leases to reclaim"
