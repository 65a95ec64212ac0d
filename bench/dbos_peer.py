"""The DBOS side of the benchmark, run in its own process by ``orchestrator.py``.

DBOS keeps global state (one instance per process, a decorator registry), so every phase
runs in a fresh interpreter:

    python bench/dbos_peer.py enqueue DB_PATH N      # put N workflows on the queue, not run
    python bench/dbos_peer.py drain DB_PATH N        # launch DBOS, time until N are done
    python bench/dbos_peer.py direct DB_PATH N       # start_workflow N times, wait for all
    python bench/dbos_peer.py setup URL 0            # create DBOS's tables, nothing else

``DB_PATH`` is a SQLite file, or a ``postgresql://`` URL for the PostgreSQL cost benchmark
(the database must exist).

Each phase prints one JSON object as its last line of stdout.

The workflow is the same as Soloist's ``bench3`` playbook: three no-op steps in sequence,
each a ``@DBOS.step`` whose (empty) result DBOS checkpoints in ``operation_outputs``.
The system database is SQLite in WAL mode with ``synchronous=NORMAL``, the same settings
Soloist's SQLite store uses, set on every connection DBOS opens.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

QUEUE = "bench"


@event.listens_for(sa.engine.Engine, "connect")
def _pragmas(dbapi_conn: Any, record: Any) -> None:
    # Applies to every engine in this process, i.e. DBOS's system database engine.
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


from dbos import DBOS, DBOSConfig  # noqa: E402
from pg_cost import POLL_MARK, backend_cpu_seconds  # noqa: E402  (bench/ is on sys.path)


@DBOS.step()
def step_a() -> None:
    return None


@DBOS.step()
def step_b() -> None:
    return None


@DBOS.step()
def step_c() -> None:
    return None


@DBOS.workflow()
def bench3(i: int) -> None:
    step_a()
    step_b()
    step_c()


def _is_pg(path: str) -> bool:
    return path.startswith(("postgresql://", "postgres://"))


def _prepare(path: str) -> None:
    if _is_pg(path):
        return
    # WAL is persistent in the file: set it before DBOS first opens the database.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def _dbos(path: str, listen: list[str] | None) -> None:
    config: DBOSConfig = {
        "name": "soloist-bench",
        "system_database_url": path if _is_pg(path) else f"sqlite:///{path}",
        "log_level": "WARNING",
        "application_version": "bench-1",
        "executor_id": "bench",
    }
    DBOS(config=config)
    if listen is not None:
        DBOS.listen_queues(listen)
    DBOS.launch()


def _count(path: str, status: str) -> int:
    if _is_pg(path):
        import psycopg

        with psycopg.connect(path, autocommit=True) as pconn:
            found = pconn.execute("SELECT count(*) FROM dbos.workflow_status WHERE status = %s",
                                  (status,)).fetchone()
        return int(found[0]) if found else 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute("SELECT count(*) FROM workflow_status WHERE status = ?",
                           (status,)).fetchone()
        return int(row[0])
    finally:
        conn.close()


def _journal_mode(path: str) -> str:
    if _is_pg(path):
        return "postgresql"
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def enqueue(path: str, n: int, worker_concurrency: int | None, poll: float) -> dict[str, Any]:
    _prepare(path)
    _dbos(path, listen=["not-" + QUEUE])  # nothing in this process dequeues "bench"
    queue_kwargs: dict[str, Any] = {"polling_interval_sec": poll}
    if worker_concurrency:
        queue_kwargs["worker_concurrency"] = worker_concurrency
    queue = DBOS.register_queue(QUEUE, on_conflict="always_update", **queue_kwargs)
    t0 = time.perf_counter()
    for i in range(n):
        queue.enqueue(bench3, i)
    elapsed = time.perf_counter() - t0
    DBOS.destroy()
    return {"enqueued": _count(path, "ENQUEUED"), "enqueue_s": elapsed,
            "enqueue_per_s": n / elapsed if elapsed else None}


def _synchronous() -> Any:
    """PRAGMA synchronous on a connection of DBOS's own engine (1 = NORMAL, 2 = FULL)."""
    try:
        from dbos._dbos import _get_dbos_instance

        engine = _get_dbos_instance()._sys_db.engine
        with engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA synchronous").scalar()
    except Exception as exc:  # private API: report rather than fail the benchmark
        return f"unknown ({exc})"


def drain(path: str, n: int, timeout: float) -> dict[str, Any]:
    poller_cpu = 0.0
    _dbos(path, listen=None)
    synchronous = None if _is_pg(path) else _synchronous()
    t0 = time.perf_counter()
    done = 0
    if _is_pg(path):
        import psycopg

        # One polling connection every 20 ms, as for the other systems on PostgreSQL: a
        # connection per poll would start a server process each time, on the server
        # being measured.
        with psycopg.connect(path, autocommit=True) as poller:
            while time.perf_counter() - t0 < timeout:
                row = poller.execute(f"SELECT count(*) AS {POLL_MARK} FROM dbos.workflow_status "
                                     "WHERE status = 'SUCCESS'").fetchone()
                done = int(row[0]) if row else 0
                if done >= n:
                    break
                time.sleep(0.02)
            poller_cpu = backend_cpu_seconds(poller.info.backend_pid)
    else:
        while time.perf_counter() - t0 < timeout:
            done = _count(path, "SUCCESS")
            if done >= n:
                break
            time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    DBOS.destroy(workflow_completion_timeout_sec=0)
    return {"done": done, "drain_s": elapsed,
            "runs_per_s": done / elapsed if elapsed and done >= n else None,
            "journal_mode": _journal_mode(path), "synchronous": synchronous,
            "poller_cpu_s": poller_cpu}


def direct(path: str, n: int, timeout: float) -> dict[str, Any]:
    """End to end without a queue: ``DBOS.start_workflow`` N times, wait for all."""
    _prepare(path)
    _dbos(path, listen=None)
    t0 = time.perf_counter()
    handles = [DBOS.start_workflow(bench3, i) for i in range(n)]
    started = time.perf_counter() - t0
    for handle in handles:
        handle.get_result()
    elapsed = time.perf_counter() - t0
    done = _count(path, "SUCCESS")
    DBOS.destroy(workflow_completion_timeout_sec=0)
    return {"done": done, "start_s": started, "total_s": elapsed,
            "runs_per_s": done / elapsed if done >= n else None,
            "journal_mode": _journal_mode(path)}


def main() -> None:
    logging.getLogger("dbos").setLevel(logging.WARNING)
    phase, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    concurrency = int(os.environ.get("BENCH_DBOS_WORKER_CONCURRENCY", "0")) or None
    poll = float(os.environ.get("BENCH_DBOS_POLL", "0.01"))
    timeout = float(os.environ.get("BENCH_DBOS_TIMEOUT", "120"))
    if phase == "enqueue":
        result = enqueue(path, n, concurrency, poll)
    elif phase == "direct":
        result = direct(path, n, timeout)
    elif phase == "setup":
        _dbos(path, listen=None)
        DBOS.destroy()
        result = {"setup": "done"}
    elif phase == "drain":
        result = drain(path, n, timeout)
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
