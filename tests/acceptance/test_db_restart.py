"""PostgreSQL stops in the middle of a load and starts again 5 s later.

Two processes share the database: ``soloist up`` (a worker and the scheduler) and a
``soloist worker``. While 300 three-step runs (one file effect each) are processed the
server is stopped, left down for 5 s and started again on the same port. Neither process
exits; each says once that the store went and once that it came back (not once per
poll); every run finishes, each effect once; the scheduler goes on routing events; and
the wake-ups come back with LISTEN, so a run started afterwards is claimed at once rather
than at the next poll.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from support.postgres import EmbeddedPostgres
from support.workers import ready, start_worker
from support.workspaces import write_workspace

from soloist.orchestration.runs import StartRequest, start_run
from soloist.workspace import Workspace

pytestmark = pytest.mark.slow

RUNS = 300
DOWN_S = 5.0

LOAD = """
name: load
steps:
  - {id: a, python: "tasks:pause", args: {ms: 20}, retry: {max_attempts: 30}}
  - {id: b, tool: file.append, args: {path: effects.txt, line: "{{ run.id }}"},
     retry: {max_attempts: 30}}
  - {id: c, python: "tasks:pause", args: {ms: 20}, retry: {max_attempts: 30}}
"""
MARK = """
name: mark
steps:
  - {id: a, tool: note, args: {text: "mark"}}
"""
FOLLOW = """
name: follow
triggers:
  - event: run.completed.mark
steps:
  - {id: a, tool: note, args: {text: "followed"}}
"""
TASKS = """
import time

def pause(ctx, ms):
    time.sleep(ms / 1000)
    return {"slept": ms}
"""


def loop_of(line: str) -> str:
    """Which loop of which process logged ``line`` (``worker host:pid:tag``...)."""
    found = re.search(r"(worker \S+|scheduler \S+|wake-ups of process \d+)", line)
    return found.group(1) if found else line


def counts(ws: Workspace) -> dict[str, int]:
    with ws.store.read() as tx:
        return tx.runs.count_by_state()


def wait_for(ws: Workspace, playbook: str, n: int, until: float) -> int:
    done = 0
    while time.time() < until:
        with ws.store.read() as tx:
            done = sum(1 for r in tx.runs.list(playbook=playbook, limit=10_000)
                       if r.state == "done")
        if done >= n:
            break
        time.sleep(0.1)
    return done


def test_a_database_restart_loses_nothing_and_repeats_nothing(
        tmp_path: Path, own_pg_server: EmbeddedPostgres) -> None:
    url = own_pg_server.create_database("restart")
    root = write_workspace(tmp_path / "ws", {"load": LOAD, "mark": MARK, "follow": FOLLOW},
                           TASKS)
    env = {**os.environ, "SOLOIST_DATABASE_URL": url, "SOLOIST_LEASE_SECONDS": "2"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with Workspace(root, database_url=url) as ws:
            ws.deploy()
            load = ws.registry.latest_playbook("load")
            with ws.store.transaction() as tx:
                for _ in range(RUNS):
                    start_run(tx, StartRequest(load, {}, {"test": "restart"}, "test"))
        procs = [start_worker(root, env, command="up"), start_worker(root, env)]
        deadline = time.time() + 240
        with Workspace(root, database_url=url) as ws:
            while time.time() < deadline and counts(ws).get("done", 0) < RUNS // 3:
                time.sleep(0.05)
        assert all(p.poll() is None for p in procs)
        own_pg_server.halt()
        time.sleep(DOWN_S)
        assert all(p.poll() is None for p in procs), "a process exited while the store was down"
        own_pg_server.resume()
        with Workspace(root, database_url=url) as ws:
            assert wait_for(ws, "load", RUNS, deadline) == RUNS, counts(ws)
            # The scheduler resumed: an event after the restart still starts its follower.
            ws.start("mark", {})
            assert wait_for(ws, "follow", 1, deadline) == 1
            # Wake-ups are back (LISTEN again): a new run is claimed at once, well before
            # the 5 s an idle PostgreSQL worker would otherwise sleep between looks.
            time.sleep(6.0)  # every worker idle, asleep until woken
            started = ws.start("mark", {})
            assert wait_for(ws, "mark", 2, deadline) == 2
            events = ws.log(run_id=started)
            created = min(e.ts for e in events)
            claimed = min(e.ts for e in events if e.kind == "step.transition")
            assert claimed - created < 2.5, claimed - created
            assert ws.verify().ok
        assert all(p.poll() is None for p in procs)
    finally:
        ready_by = time.time() + 30
        while procs and not ready(root, procs[1]) and time.time() < ready_by:
            time.sleep(0.05)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(60) for proc in procs]
    log = (root / "workers.log").read_text()
    assert codes == [0, 0], log[-3000:]
    lines = (root / "effects.txt").read_text().splitlines()
    keys = Counter(line.split("\t")[0] for line in lines)
    assert len(keys) == RUNS and max(keys.values()) == 1
    # Once per loop when the outage began and once when it ended, not once per attempt:
    # in each process its worker and its wake-up listener, in `up` its scheduler too.
    went = Counter(loop_of(line) for line in log.splitlines()
                   if ": the store is unreachable" in line)
    back = Counter(loop_of(line) for line in log.splitlines()
                   if ": the store is reachable again" in line)
    assert set(went) == set(back), (went, back)
    assert all(n == 1 for n in [*went.values(), *back.values()]), (went, back)
    loops = Counter(who.split(" ")[0].rstrip(":") for who in went)
    assert loops == {"worker": 2, "scheduler": 1, "wake-ups": 2}, went


def test_a_worker_started_while_the_database_is_down_waits_for_it(
        tmp_path: Path, own_pg_server: EmbeddedPostgres) -> None:
    """A fleet restarted with its database: ``soloist up`` started while the server is
    down says so once, waits, and works once the server is back."""
    url = own_pg_server.create_database("later")
    root = write_workspace(tmp_path / "ws", {"mark": MARK, "follow": FOLLOW})
    with Workspace(root, database_url=url) as ws:
        ws.deploy()
        started = ws.start("mark", {})
    own_pg_server.halt()
    env = {**os.environ, "SOLOIST_DATABASE_URL": url}
    proc = start_worker(root, env, command="up")
    try:
        time.sleep(DOWN_S)
        assert proc.poll() is None, (root / "workers.log").read_text()
        own_pg_server.resume()
        with Workspace(root, database_url=url) as ws:
            deadline = time.time() + 60
            assert wait_for(ws, "follow", 1, deadline) == 1  # the scheduler too
            assert ws.get_run(started).state == "done"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    log = (root / "workers.log").read_text()
    assert code == 0, log[-3000:]
    assert log.count("the store is unreachable") == 1, log
    assert log.count("the store is reachable again") == 1, log
