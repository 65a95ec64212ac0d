"""The PostgreSQL peers of the orchestrator benchmark: DBOS and Procrastinate, each run in
its own processes (``dbos_peer.py``, ``procrastinate_peer.py``) on its own fresh database
of the benchmark's server, measured by the same :class:`pg_cost.Meter` as Soloist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pg_cost

HERE = Path(__file__).resolve().parent


def version_of(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _peer_phase(script: str, args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / script), *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=cwd)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{script} {args[0]} failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def pg_peer_cost(name: str, pg: Any, meter: Any, n: int, tmp: Path,
                 concurrency: int) -> dict[str, Any]:
    """A peer's 3-step workload on its own fresh database: runs/s and the server's cost.

    Its tables are made first (outside the measure); then the N runs are enqueued, one
    transaction each, by one process and drained by another, the meter running across both.
    """
    package = {"dbos": "dbos", "procrastinate": "procrastinate"}[name]
    if importlib.util.find_spec(package) is None:
        return {f"{name}_pg_unavailable": f"{package} is not installed; pip install {package} "
                                           "(make bench does)"}
    db = f"bench_{name}"
    url = pg.create_database(db)
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               BENCH_DBOS_WORKER_CONCURRENCY=str(concurrency), BENCH_DBOS_POLL="0.1",
               BENCH_PROCRASTINATE_CONCURRENCY=str(concurrency))
    script = f"{name}_peer.py"
    try:
        _peer_phase(script, ["setup" if name == "dbos" else "schema", url, "0"], env, tmp)
        meter.start()
        enq = _peer_phase(script, ["enqueue", url, str(n)], env, tmp)
        enqueue_cost = meter.reading(n)
        drained = _peer_phase(script, ["drain", url, str(n)], env, tmp)
        cost = meter.stop(n, db, float(drained.get("poller_cpu_s") or 0.0))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {f"{name}_pg_unavailable": str(exc)}
    if drained.get("done", 0) < n:
        return {f"{name}_pg_unavailable": f"{name} finished {drained.get('done')} of {n} runs"}
    return {
        f"{name}_pg_runs_per_s": drained["runs_per_s"],
        f"{name}_pg_enqueue_per_s": enq["enqueue_per_s"],
        f"{name}_pg_server_cpu_ms_per_run": cost["cpu_ms_per_run"],
        f"{name}_pg_exec_ms_per_run": cost.get("exec_ms_per_run"),
        f"{name}_pg_wal_bytes_per_run": cost["wal_bytes_per_run"],
        f"{name}_pg_statements_per_run": cost.get("calls_per_run"),
        f"{name}_pg_enqueue_cpu_ms_per_run": enqueue_cost["cpu_ms_per_run"],
        f"{name}_pg_enqueue_wal_bytes_per_run": enqueue_cost["wal_bytes_per_run"],
        f"{name}_pg_top_statements": cost.get("top_statements"),
        f"{name}_pg_table_bytes_per_run": pg_cost.table_bytes(url, n),
        f"{name}_pg_concurrency": concurrency,
        f"{name}_version": version_of(package),
    }
