"""Work that hangs: a call that never returns, and a worker frozen in the middle of its steps.

(a) A Python step that waits for ever and ``http.request`` calls (a GET while the step
executes, a POST when its intent is dispatched) to a server of the test that accepts and
never answers are each ended by the step's ``timeout``: the attempt counts as a
transient failure (retried, then failed by the retry policy), the lease is given back, and
the worker's other steps go on, even with as few threads as there are hung calls (Python
cannot end a thread: a hung one is left behind, and the worker runs the next step on
another). The worker still stops at once and exits 0 on SIGTERM.

(b) A ``soloist worker`` holding leases is frozen (SIGSTOP: as a process stuck in C code,
it neither heartbeats nor answers anything): another worker reaps its leases and finishes
those steps. Let go (SIGCONT), the frozen worker's late writes are refused by the fencing
token, and it goes on working; every run is done and every effect happened once.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
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
from soloist.workspace import Workspace

pytestmark = pytest.mark.slow

LEASE_S = 2
QUICK = 12

HANG = """
name: hang
steps:
  - {id: a, python: "tasks:hang", timeout: 2s, retry: {max_attempts: 2, backoff: 0.1}}
"""
SILENT = """
name: silent
inputs: {type: object, properties: {url: {type: string}}}
steps:
  - {id: a, tool: http.request, args: {url: "{{ inputs.url }}", timeout: 300},
     timeout: 2s, retry: {max_attempts: 2, backoff: 0.1}}
"""
SILENT_POST = """
name: silent-post
inputs: {type: object, properties: {url: {type: string}}}
steps:
  - {id: a, tool: http.request, args: {url: "{{ inputs.url }}", method: POST, timeout: 300},
     timeout: 2s, retry: {max_attempts: 2, backoff: 0.1}}
"""
QUICK_PLAYBOOK = """
name: quick
steps:
  - {id: a, python: "tasks:pause", args: {ms: 100}}
  - {id: b, python: "tasks:pause", args: {ms: 100}}
"""
FREEZE = """
name: freeze
steps:
  - {id: a, python: "tasks:pause", args: {ms: 1200}, retry: {max_attempts: 20}}
  - {id: b, tool: file.append, args: {path: effects.txt, line: "{{ run.id }}"},
     retry: {max_attempts: 20}}
  - {id: c, python: "tasks:pause", args: {ms: 1200}, retry: {max_attempts: 20}}
"""
TASKS = """
import threading
import time

def hang(ctx):
    threading.Event().wait()  # never set: the call never returns

def pause(ctx, ms):
    time.sleep(ms / 1000)
    return {"slept": ms}
"""


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (nor closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown, not close alone: a thread blocked in accept() is woken by it.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()




def leases_of(ws: Workspace, marker: str) -> list[tuple[str, str, int]]:
    """(run, step, token) of every step whose lease ``marker``'s worker holds."""
    with ws.store.read() as tx:
        rows = tx.steps.expired(time.time() + 86400, 1000)
    return [(r.run_id, r.step_id, r.lease_token) for r in rows
            if marker in (r.lease_owner or "") and r.lease_token is not None]


def env_for(db_url: str) -> dict[str, str]:
    return {**os.environ, "SOLOIST_DATABASE_URL": db_url,
            "SOLOIST_LEASE_SECONDS": str(LEASE_S), "SOLOIST_POLL_SECONDS": "0.05"}


def test_calls_that_never_return_are_ended_by_the_step_timeout(
        tmp_path: Path, db_url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    root = write_workspace(tmp_path / "ws", {"hang": HANG, "silent": SILENT,
                                             "silent-post": SILENT_POST,
                                             "quick": QUICK_PLAYBOOK}, TASKS)
    (root / "policies.yaml").write_text("allowed_hosts: ['127.0.0.1']\n")
    log = root / "workers.log"
    with SilentServer() as silent, Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        # Two threads: both are soon taken by a call that never returns.
        worker = start_worker(root, env_for(db_url), concurrency=2)
        procs.append(worker)
        wait_for("the worker ready", lambda: ready(root, worker), 60, log)
        marker = f":{worker.pid}:"
        hung = [ws.start("hang", {}),
                ws.start("silent", {"url": f"http://127.0.0.1:{silent.port}/"}),
                ws.start("silent-post", {"url": f"http://127.0.0.1:{silent.port}/post"})]
        wait_for("the silent server called", lambda: len(silent.accepted) >= 2, 60, log)
        quick = [ws.start("quick", {}) for _ in range(QUICK)]

        def ended() -> bool:
            return all(ws.get_run(r).state in ("done", "failed") for r in hung + quick)

        wait_for("every run ended", ended, 120, log)
        # Nothing is left held: each timed-out attempt gave its lease back.
        assert leases_of(ws, marker) == []
        assert worker.poll() is None
        codes = stop_workers(root, procs)
        assert codes == [0], log.read_text()[-3000:]
        for run_id in hung:
            run = ws.get_run(run_id)
            assert run.state == "failed", run
            assert "timed out" in (run.error or ""), run.error
            with ws.store.read() as tx:
                (step,) = tx.steps.for_run(run_id)
            assert step.attempt == 2, step  # retried once, as its policy says, then failed
            assert step.lease_owner is None, step
        assert [ws.get_run(r).state for r in quick] == ["done"] * QUICK
        # Two attempts each of the read (GET, while the step executes) and of the write
        # (POST, dispatched as an intent), every connection left hanging by the server.
        assert len(silent.accepted) == 4
        assert ws.verify().ok


FROZEN = 16  # runs before the freeze
LATER = 12  # runs after: work for the worker that was frozen


def frozen_outside_a_write(db_url: str, name: str) -> bool:
    """Whether the stopped victim (its PostgreSQL sessions named ``name``) holds no write
    transaction open.

    A process frozen inside one keeps its locks for as long as it lives: SQLite's write
    lock (no server can take it back), or PostgreSQL's row locks, the episodic chain's
    head among them, until the server ends the session. Freezing it there stops every
    writer until it continues, which is the lock's point and not what this test is
    about: it freezes the victim between two transactions.
    """
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1.0,
                               isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
        return True
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                           "%s AND xact_start IS NOT NULL", (name,)).fetchone()
    return row is not None and row[0] == 0


def test_a_frozen_worker_loses_its_leases_and_its_late_writes_are_refused(
        tmp_path: Path, db_url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    root = write_workspace(tmp_path / "ws", {"freeze": FREEZE}, TASKS)
    log = root / "workers.log"
    env = env_for(db_url)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        playbook = ws.registry.latest_playbook("freeze")
        steady = start_worker(root, env, concurrency=4)
        procs.append(steady)
        # libpq names the victim's sessions, so the test can see whether it froze in one.
        name = f"victim-{secrets.token_hex(4)}"
        victim = start_worker(root, {**env, "PGAPPNAME": name}, concurrency=4)
        procs.append(victim)
        wait_for("both workers ready", lambda: ready(root, steady) and ready(root, victim),
                 60, log)
        one, two = f":{victim.pid}:", f":{steady.pid}:"
        with ws.store.transaction() as tx:
            for _ in range(FROZEN):
                start_run(tx, StartRequest(playbook, {}, {"test": "freeze"}, "test"))
        for _ in range(50):
            wait_for("the victim holding leases", lambda: len(leases_of(ws, one)) >= 2, 60,
                     log)
            victim.send_signal(signal.SIGSTOP)
            time.sleep(0.3)
            if frozen_outside_a_write(db_url, name):
                break
            victim.send_signal(signal.SIGCONT)
            time.sleep(0.2)
        else:
            raise AssertionError("the victim was never frozen between two transactions")
        held = set(leases_of(ws, one))
        assert held

        def taken_over() -> bool:
            done = {(e.run_id, e.step_id) for e in ws.log(limit=1_000_000)
                    if e.kind == "step.transition" and e.data.get("to") == "done"
                    and two in e.actor}
            return all((run, step) in done for run, step, _ in held)

        wait_for("the steady worker finishing the frozen one's steps", taken_over, 120, log)
        continued_at = ws.log_head()
        victim.send_signal(signal.SIGCONT)

        wait_for("the frozen worker's late writes refused",
                 lambda: refused_writes(ws, one), 60, log)
        with ws.store.transaction() as tx:
            for _ in range(LATER):
                start_run(tx, StartRequest(playbook, {}, {"test": "freeze"}, "test"))

        wait_for("every run done", lambda: done_runs(ws) == FROZEN + LATER, 240, log)
        assert steady.poll() is None and victim.poll() is None
        codes = stop_workers(root, procs)
        assert codes == [0, 0], log.read_text()[-3000:]
        every = ws.log(limit=1_000_000)
        late = {(e.run_id, e.step_id, int(e.data["token"])) for e in every
                if e.kind == "lease.refused" and one in str(e.data.get("worker"))}
        assert late and late <= held, (late, held)
        after = [e for e in every if e.seq > continued_at and e.kind == "step.transition"
                 and e.data.get("to") == "done" and one in e.actor]
        assert after, "the worker that was frozen should go on completing steps"
        with ws.store.read() as tx:
            assert tx.runs.count_by_state() == {"done": FROZEN + LATER}
        keys = Counter(line.split("\t")[0]
                       for line in (root / "effects.txt").read_text().splitlines())
        assert len(keys) == FROZEN + LATER
        assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
        assert ws.verify().ok
