"""The Procrastinate side of the PostgreSQL cost benchmark, run in its own process.

    python bench/procrastinate_peer.py schema URL        # apply Procrastinate's schema
    python bench/procrastinate_peer.py enqueue URL N     # defer N chains (one job each)
    python bench/procrastinate_peer.py drain URL N       # a worker, until N chains are done

Each phase prints one JSON object as its last line of stdout.

The workload is Soloist's ``bench3``: three no-op steps in sequence. Procrastinate has no
workflows, so the chain is three jobs: ``step_a`` defers ``step_b`` when it runs, which
defers ``step_c``, the way a Procrastinate user chains work; each job is a row of
``procrastinate_jobs`` that is fetched, started and finished (with its events). A chain
is done when its ``step_c`` job has succeeded. The worker listens for notifications
(``listen_notify``, the default) with concurrency ``BENCH_PROCRASTINATE_CONCURRENCY``
(default 16, the Soloist worker process's) and keeps finished jobs (the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from typing import Any

import procrastinate
import psycopg
from pg_cost import POLL_MARK, backend_cpu_seconds  # bench/ is on sys.path


def make_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="step_c", queue="bench")
    async def step_c(i: int) -> None:
        return None

    @app.task(name="step_b", queue="bench")
    async def step_b(i: int) -> None:
        await step_c.defer_async(i=i)

    @app.task(name="step_a", queue="bench")
    async def step_a(i: int) -> None:
        await step_b.defer_async(i=i)

    app.bench_first = step_a  # type: ignore[attr-defined]
    return app


async def schema(url: str) -> dict[str, Any]:
    app = make_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
    return {"schema": "applied"}


async def enqueue(url: str, n: int) -> dict[str, Any]:
    app = make_app(url)
    async with app.open_async():
        first = app.bench_first  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        for i in range(n):
            await first.defer_async(i=i)
        elapsed = time.perf_counter() - t0
    return {"enqueued": n, "enqueue_s": elapsed, "enqueue_per_s": n / elapsed}


async def drain(url: str, n: int, concurrency: int, timeout: float) -> dict[str, Any]:
    app = make_app(url)
    async with app.open_async():
        t0 = time.perf_counter()
        worker = asyncio.create_task(app.run_worker_async(
            queues=["bench"], concurrency=concurrency, wait=True,
            install_signal_handlers=False))
        done = 0
        # One polling connection, as for the other systems (every 20 ms).
        with psycopg.connect(url, autocommit=True) as poller:
            while time.perf_counter() - t0 < timeout:
                row = poller.execute(f"SELECT count(*) AS {POLL_MARK} FROM procrastinate_jobs "
                                     "WHERE "
                                     "task_name = 'step_c' AND status = 'succeeded'").fetchone()
                done = int(row[0]) if row else 0
                if done >= n or worker.done():
                    break
                await asyncio.sleep(0.02)
            poller_cpu = backend_cpu_seconds(poller.info.backend_pid)
        elapsed = time.perf_counter() - t0
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    return {"done": done, "drain_s": elapsed,
            "runs_per_s": done / elapsed if done >= n else None, "poller_cpu_s": poller_cpu,
            "version": procrastinate.__version__ if hasattr(procrastinate, "__version__")
            else None}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    phase, url = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    concurrency = int(os.environ.get("BENCH_PROCRASTINATE_CONCURRENCY", "16"))
    timeout = float(os.environ.get("BENCH_PROCRASTINATE_TIMEOUT", "300"))
    if phase == "schema":
        result = asyncio.run(schema(url))
    elif phase == "enqueue":
        result = asyncio.run(enqueue(url, n))
    elif phase == "drain":
        result = asyncio.run(drain(url, n, concurrency, timeout))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
