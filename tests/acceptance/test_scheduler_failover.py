"""SIGKILL the ``soloist up`` that holds the scheduler: another takes over within the
scheduler's lease, and no cron fire is lost or doubled across the handover.

The workspace's rehearsal clock moves cron time a minute at a time, so the test needs no
real minute to pass (a fire owed while no scheduler leads is made late, once, by the next
one); the handover itself is on the real clock and is printed.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.workers import start_worker, wait_for
from support.workspaces import CRON_EACH_MINUTE, write_workspace

from soloist.store.base import EventRow
from soloist.workspace import Workspace

pytestmark = pytest.mark.slow

#: The scheduler's lease on SQLite (a row with an expiry); PostgreSQL's advisory lock goes
#: with the killed process's session, at once.
SQLITE_LEASE_S = 15.0



def elections(ws: Workspace) -> list[EventRow]:
    return [e for e in ws.log(limit=100_000) if e.kind == "scheduler.elected"]


def fires(ws: Workspace) -> list[float]:
    with ws.store.read() as tx:
        return sorted(float(r.inputs["at"]) for r in tx.runs.list(playbook="tick", limit=100))


def test_a_killed_scheduler_is_replaced_and_cron_fires_once(
        tmp_path: Path, db_url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    root = write_workspace(tmp_path / "ws", {"tick": CRON_EACH_MINUTE}, toml="test_clock = true\n")
    env = {**os.environ, "SOLOIST_DATABASE_URL": db_url}
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        first = start_worker(root, env, command="up")
        procs.append(first)
        wait_for("the first scheduler elected",
                 lambda: any(f":{first.pid}:" in e.actor for e in elections(ws)), 60)
        # Half a minute past the next minute: each later move of one minute then passes
        # exactly one fire time, as long as the handover takes less than 30 s.
        ws.clock.advance(90 - ws.clock.read().now % 60, "test")
        wait_for("the first fire", lambda: len(fires(ws)) == 1, 60)
        second = start_worker(root, env, command="up")
        procs.append(second)
        wait_for("the second scheduler up", lambda: any(
            r.get("pid") == second.pid and r.get("role") == "scheduler"
            for r in _processes(ws)), 60)
        killed_at = ws.store.now()
        first.send_signal(signal.SIGKILL)
        first.wait()
        ws.clock.advance(60, "test")  # a fire owed during the handover
        wait_for("the second scheduler elected",
                 lambda: any(f":{second.pid}:" in e.actor for e in elections(ws)),
                 SQLITE_LEASE_S + 30)
        wait_for("the fire owed in the handover", lambda: len(fires(ws)) == 2, 60)
        ws.clock.advance(60, "test")
        wait_for("the next fire", lambda: len(fires(ws)) == 3, 60)
        time.sleep(1.0)  # a doubled fire would show by now
        times = fires(ws)
        took_over = next(e.ts for e in elections(ws) if f":{second.pid}:" in e.actor)
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    failover = took_over - killed_at
    print(f"scheduler failover on {db_url.split(':')[0]}: {failover:.2f} s")
    assert len(times) == 3, times
    assert [b - a for a, b in itertools.pairwise(times)] == [60.0, 60.0], times
    lease = SQLITE_LEASE_S if db_url.startswith("sqlite") else 1.0
    assert 0 < failover <= lease + 1.0, failover


def _processes(ws: Workspace) -> list[dict[str, object]]:
    with ws.store.read() as tx:
        return tx.scheduler.workers(0)
