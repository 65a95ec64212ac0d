"""Workers whose clocks are two minutes off share one PostgreSQL with a correct one.

Leases, heartbeats and cron fires are read on the database's clock, so a worker running
120 s ahead reaps no lease that is still alive, one running 120 s behind renews none
into the past, and a cron trigger fires once per minute on the minute, whichever of the
skewed processes holds the scheduler. The clocks are shifted with libfaketime (Debian's
``faketime``), in the worker processes only.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from support.faults import faketime_available, skewed
from support.workers import start_worker, stop_workers
from support.workspaces import CRON_EACH_MINUTE, write_workspace

from soloist.orchestration.runs import StartRequest, start_run
from soloist.workspace import Workspace

pytestmark = pytest.mark.slow

LEASE_S = 2
SKEWS = (0, 120, -120)
RUNS = 24

PLAYBOOK = """
name: skew
steps:
  - {id: a, python: "tasks:pause", args: {ms: 700}}
  - {id: b, python: "tasks:pause", args: {ms: 700}}
  - {id: c, python: "tasks:pause", args: {ms: 700}}
"""
# Not time.sleep: under libfaketime 0.9.10 with the monotonic clock left alone it fails
# (EINVAL from clock_nanosleep); the worker itself never calls it.
TASKS = """
import threading

def pause(ctx, ms):
    threading.Event().wait(ms / 1000)
    return {"slept": ms}
"""


@pytest.fixture
def faketime() -> None:
    reason = faketime_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def server_now(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
    assert row is not None
    return float(row[0])


def test_skewed_workers_neither_steal_nor_stretch_leases(
        tmp_path: Path, pg_url: str, faketime: None,
        procs: list[subprocess.Popen[bytes]]) -> None:
    root = write_workspace(tmp_path / "ws", {"skew": PLAYBOOK}, TASKS)
    env = {**os.environ, "SOLOIST_DATABASE_URL": pg_url,
           "SOLOIST_LEASE_SECONDS": str(LEASE_S)}
    with Workspace(root, database_url=pg_url) as ws:
        ws.deploy()
        playbook = ws.registry.latest_playbook("skew")
        procs.extend(start_worker(root, {**env, **(skewed(s) if s else {})})
                     for s in SKEWS)
        with ws.store.transaction() as tx:
            for _ in range(RUNS):
                start_run(tx, StartRequest(playbook, {}, {"test": "skew"}, "test"))
        # Every lease written, by whichever worker, expires within one lease of the
        # database's now: not in the past (a clock behind), not minutes ahead (a clock
        # ahead).
        leases: list[tuple[str, float]] = []
        deadline = time.time() + 180
        done = 0
        while time.time() < deadline and done < RUNS:
            with ws.store.read() as tx:
                held = [r for r in tx.steps.expired(time.time() + 86400, 1000)
                        if r.lease_expires is not None]
                done = tx.runs.count_by_state().get("done", 0)
            at = server_now(pg_url)
            leases.extend((r.lease_owner or "", r.lease_expires - at)
                          for r in held if r.lease_expires is not None)
            time.sleep(0.1)
        codes = stop_workers(root, procs)
        log = (root / "workers.log").read_text()
        assert done == RUNS, log[-3000:]
        assert codes == [0, 0, 0], log[-3000:]
        assert leases, "the workers should have been seen holding leases"
        # A sample is read just after a heartbeat at the latest, or a lease later at most
        # (a beat is due every third of a lease): never more than a lease ahead, and never
        # behind by more than the time the sampling takes.
        ahead = max(left for _, left in leases)
        behind = min(left for _, left in leases)
        assert ahead <= LEASE_S + 0.5, ahead
        assert behind > -1.0, behind
        events = ws.log(limit=1_000_000)
        reaped = [e for e in events if e.kind == "step.transition"
                  and "expired" in str(e.data.get("reason", ""))]
        assert reaped == [], reaped[:3]
        assert [e for e in events if e.kind == "lease.refused"] == []
        # All three took part, the skewed ones included.
        claimers = Counter(str(e.actor).split(":")[1] for e in events
                           if e.kind == "step.transition" and "lease_token" in e.data)
        assert set(claimers) == {str(p.pid) for p in procs}, claimers
        # Each says once that its clock is off (the correct one says nothing).
        assert log.count("s off the database's") == 2, log[-3000:]


def test_cron_fires_once_a_minute_whichever_skewed_scheduler_leads(
        tmp_path: Path, pg_url: str, faketime: None,
        procs: list[subprocess.Popen[bytes]]) -> None:
    """The process 120 s ahead leads first: it fires nothing early. Killed, it hands over to
    another (one behind, or the correct one): no minute is lost or fired twice."""
    root = write_workspace(tmp_path / "ws", {"tick": CRON_EACH_MINUTE})
    env = {**os.environ, "SOLOIST_DATABASE_URL": pg_url, "SOLOIST_LEASE_SECONDS": "2"}
    with Workspace(root, database_url=pg_url) as ws:
        ws.deploy()
        ahead = start_worker(root, {**env, **skewed(120)}, command="up")
        procs.append(ahead)
        by = time.time() + 60
        while not leads(ws, ahead) and time.time() < by:
            time.sleep(0.05)
        time.sleep(1.0)  # its first pass takes the scheduler's lock
        procs.extend(start_worker(root, {**env, **(skewed(s) if s else {})}, command="up")
                     for s in (-120, 0))

        def fired() -> list[tuple[float, float]]:
            with ws.store.read() as tx:
                rows = tx.runs.list(playbook="tick", limit=100)
            return sorted((float(r.inputs["at"]), r.created_at) for r in rows)

        deadline = time.time() + 200
        while time.time() < deadline and not fired():
            time.sleep(0.2)
        assert fired(), (root / "workers.log").read_text()[-3000:]
        ahead.send_signal(signal.SIGKILL)  # the leader goes; the next minute is another's
        ahead.wait()
        while time.time() < deadline and len(fired()) < 3:
            time.sleep(0.2)
        runs = fired()
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    times = [at for at, _ in runs]
    assert len(runs) >= 3, runs
    assert all(at % 60 == 0 for at in times), times
    assert [b - a for a, b in itertools.pairwise(times)] == [60.0] * (len(times) - 1)
    # Started on (or just after) its minute by the database's clock, never before it.
    for at, created in runs:
        assert at <= created < at + 10, (at, created)


def leads(ws: Workspace, proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc``'s scheduler has announced itself (its first pass comes next)."""
    with ws.store.read() as tx:
        rows = tx.scheduler.workers(0)
    return any(r.get("role") == "scheduler" and r.get("pid") == proc.pid for r in rows)
