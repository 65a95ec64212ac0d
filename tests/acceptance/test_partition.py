"""A host cut off from the network: its leases expire, the other host finishes its steps,
and when the link comes back its late writes are refused and it works on, not restarted.

Two network namespaces are the two hosts (tests/support/netns.py); each runs a ``soloist
worker`` against one PostgreSQL of the test, which listens on 127.0.0.1 and on the test
network's bridge. The workspace folder is shared (namespaces share the file system), so
the ``file.append`` effects of both hosts land in one file, each line under its
idempotency key. Host 1's link is cut while it holds leases of steps its threads are
running; it is healed once host 2 has taken those steps over and host 1 has noticed the
outage (within seconds, by the store's TCP timeouts, not the kernel's fifteen minutes).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import netns
from support.postgres import EmbeddedPostgres
from support.workers import (
    done_runs,
    ready,
    refused_writes,
    start_worker,
    stop_workers,
    wait_for,
)
from support.workspaces import write_workspace

from soloist.orchestration.runs import StartRequest, start_run
from soloist.store.base import EventRow
from soloist.workspace import Workspace

LEASE_S = 2
RUNS = 24  # before the cut
MORE = 16  # after the heal: work for the rejoined host
# What the server does about a client that went silent in the middle of a transaction
# (its locks are held until the session ends): the settings the README recommends.
SERVER_KEEPALIVES = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2",
                     "tcp_keepalives_count": "3", "tcp_user_timeout": "10000"}

PLAYBOOK = """
name: part
steps:
  - {id: a, python: "tasks:pause", args: {ms: 1200}, retry: {max_attempts: 20}}
  - {id: b, tool: file.append, args: {path: effects.txt, line: "{{ run.id }}"},
     retry: {max_attempts: 20}}
  - {id: c, python: "tasks:pause", args: {ms: 1200}, retry: {max_attempts: 20}}
"""
TASKS = """
import time

def pause(ctx, ms):
    time.sleep(ms / 1000)
    return {"slept": ms}
"""


@pytest.fixture
def hosts() -> Iterator[netns.Hosts]:
    netns.require()
    with netns.Hosts(2) as made:
        yield made


@pytest.fixture
def server(hosts: netns.Hosts) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(also_on=[hosts.interface], settings=SERVER_KEEPALIVES) as pg:
        yield pg


def leases_of(ws: Workspace, marker: str) -> list[tuple[str, str, int]]:
    """(run, step, token) of every step whose lease ``marker``'s worker holds."""
    with ws.store.read() as tx:
        rows = tx.steps.expired(time.time() + 86400, 1000)
    return [(r.run_id, r.step_id, r.lease_token) for r in rows
            if marker in (r.lease_owner or "") and r.lease_token is not None]


def events(ws: Workspace) -> list[EventRow]:
    return ws.log(limit=1_000_000)


def test_connections_give_up_on_a_silent_peer_unless_the_url_says_otherwise(
        pg_url: str) -> None:
    """Seconds, not the kernel's fifteen minutes (README: a partitioned worker)."""
    from soloist.store.postgres.backend import TCP_DEFAULTS, PostgresStore

    for url, wanted in ((pg_url, str(TCP_DEFAULTS["tcp_user_timeout"])),
                        (f"{pg_url}?tcp_user_timeout=3000", "3000")):
        store = PostgresStore(url)
        try:
            with store._connect() as raw:  # what every connection of the store is given
                given = raw.info.get_parameters()
        finally:
            store.close()
        assert given["tcp_user_timeout"] == wanted
        assert given["keepalives_idle"] == str(TCP_DEFAULTS["keepalives_idle"])
        assert given["connect_timeout"]


@pytest.mark.slow
def test_cut_off_host_loses_its_leases_and_rejoins_after_the_heal(
        tmp_path: Path, hosts: netns.Hosts, server: EmbeddedPostgres) -> None:
    server.create_database("partition", template="template0")
    local_url = server.database_url("partition")
    remote_url = f"postgresql://{server.user}@{hosts.gateway}:{server.port}/partition"
    root = write_workspace(tmp_path / "ws", {"part": PLAYBOOK}, TASKS)
    log = root / "workers.log"
    env = {**os.environ, "SOLOIST_DATABASE_URL": remote_url,
           "SOLOIST_LEASE_SECONDS": str(LEASE_S)}
    procs: list[subprocess.Popen[bytes]] = []
    with Workspace(root, database_url=local_url) as ws:
        ws.deploy()
        playbook = ws.registry.latest_playbook("part")
        try:
            cut_off = start_worker(root, env, concurrency=4, prefix=hosts[0].prefix)
            other = start_worker(root, env, concurrency=4, prefix=hosts[1].prefix)
            procs += [cut_off, other]
            wait_for("both workers ready", lambda: all(ready(root, p) for p in procs), 60,
                     log)
            one, two = f":{cut_off.pid}:", f":{other.pid}:"
            with ws.store.transaction() as tx:
                for _ in range(RUNS):
                    start_run(tx, StartRequest(playbook, {}, {"test": "partition"}, "test"))
            # Cut host 1 while it runs steps (a or c: a second of work in its threads).
            wait_for("host 1 holding leases", lambda: len(leases_of(ws, one)) >= 2, 60, log)
            hosts.cut(hosts[0])
            time.sleep(0.5)  # a commit already on its way lands; nothing after it can
            held = set(leases_of(ws, one))
            assert held, "host 1 should hold leases when its link goes"

            def taken_over() -> bool:
                # Every lease host 1 held has expired and been reaped, and host 2 (the only
                # one who can, until the heal) finished each of those steps.
                if leases_of(ws, one):
                    return False
                every = events(ws)
                done = {(e.run_id, e.step_id) for e in every
                        if e.kind == "step.transition" and e.data.get("to") == "done"
                        and two in e.actor}
                return reaped_from(every, _id(log, one)) <= done

            wait_for("host 2 finishing host 1's steps", taken_over, 120, log)
            wait_for("host 1 noticing the outage", lambda: f"worker {_id(log, one)}: the "
                     "store is unreachable" in log.read_text(), 120, log)
            assert cut_off.poll() is None and other.poll() is None
            healed_at = ws.log_head()
            hosts.heal(hosts[0])

            wait_for("host 1's late writes refused", lambda: refused_writes(ws, one), 120, log)
            with ws.store.transaction() as tx:
                for _ in range(MORE):
                    start_run(tx, StartRequest(playbook, {}, {"test": "partition"}, "test"))

            wait_for("every run done", lambda: done_runs(ws) == RUNS + MORE, 240, log)
            assert cut_off.poll() is None and other.poll() is None, log.read_text()[-3000:]
        finally:
            codes = stop_workers(root, procs)
        text = log.read_text()
        assert codes == [0, 0], text[-3000:]
        every = events(ws)
        # The leases host 1 held when cut expired and host 2 reaped them (a commit of host 1
        # on its way when the link went may have landed: that step was not reaped).
        reaped = reaped_from(every, _id(log, one))
        assert reaped and reaped <= {(run, step) for run, step, _ in held}, (reaped, held)
        # What host 1's threads were running when its link went came back after the heal,
        # and the fencing token refused it: only those steps, under their old tokens.
        late = {(e.run_id, e.step_id, int(e.data["token"])) for e in every
                if e.kind == "lease.refused" and one in str(e.data.get("worker"))}
        assert late and late <= held, (late, held)
        # Host 1 rejoined: not restarted, it finished steps after the heal.
        after = [e for e in every if e.seq > healed_at and e.kind == "step.transition"
                 and e.data.get("to") == "done" and one in e.actor]
        assert after, "host 1 should complete steps after its link came back"
        assert text.count(f"worker {_id(log, one)}: the store is reachable again") == 1
        with ws.store.read() as tx:
            assert tx.runs.count_by_state() == {"done": RUNS + MORE}
        keys = Counter(line.split("\t")[0]
                       for line in (root / "effects.txt").read_text().splitlines())
        assert len(keys) == RUNS + MORE
        assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
        assert ws.verify().ok


def reaped_from(every: list[EventRow], worker: str) -> set[tuple[str | None, str | None]]:
    """The steps whose lease ``worker`` held until it expired and another reaped it."""
    return {(e.run_id, e.step_id) for e in every if e.kind == "step.transition"
            and f"lease of {worker} expired" in str(e.data.get("reason", ""))}


def _id(log: Path, marker: str) -> str:
    """The worker id (host:pid:tag) whose ready line names ``marker``."""
    for line in log.read_text().splitlines():
        if marker in line and ": ready," in line:
            return line.split("soloist worker ", 1)[1].split(": ready,", 1)[0]
    raise AssertionError(f"no worker {marker} said it is ready")

