"""What a workload costs the PostgreSQL server: CPU, WAL, statements and lock waits.

Used by ``orchestrator.py`` around each system's run on the embedded server:

* **server CPU**: the utime + stime of the postmaster and of every process it started,
  from ``/proc/<pid>/stat``, before and after. A backend that exited in between was
  reaped by the postmaster, so its CPU is in the postmaster's ``cutime``/``cstime``:
  nothing is lost to connections that came and went. Linux only (else ``None``);
* **WAL bytes**: ``pg_current_wal_lsn()`` before and after (the cluster's WAL, so only
  one system may run at a time on the server);
* **statements**: ``pg_stat_statements`` (the server must preload it, see
  :data:`SETTINGS`), reset before, read after: the top statements by total time, and
  their total as the second CPU figure (execution time only: no parse, no protocol);
* the benchmark's own polling ("are all N done?", one connection, every 20 ms) is left
  out of both: its statement carries :data:`POLL_MARK`, and its backend's CPU, read from
  ``/proc`` before it disconnects, is subtracted;
* **lock waits**: a thread sampling ``pg_stat_activity`` every few milliseconds for
  backends of the database that are waiting, by wait event, and ``pg_locks`` for
  ungranted locks, by lock type and relation.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
    "pg_stat_statements.max": "5000",
    "track_io_timing": "off",
}
"""``postgresql.conf`` entries the benchmark's server starts with."""

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

POLL_MARK = "bench_poll"
"""The column name of the benchmark's own "how many are done?" query, so that its time is
left out (``pg_stat_statements`` keeps no comments, but keeps a column's name)."""


def backend_cpu_seconds(pid: int) -> float:
    """CPU seconds one server process has used (0.0 if it cannot be read)."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return text.rpartition(")")[2].split()


def server_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds the server has used so far: the postmaster, its children, reaped ones."""
    if pid is None:
        return None
    own = _stat_fields(pid)
    if own is None:
        return None
    # After ")": state is index 0, so utime/stime/cutime/cstime are 11..14.
    ticks = sum(int(own[i]) for i in (11, 12, 13, 14))
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == pid:
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or int(fields[1]) != pid:  # index 1: the parent's pid
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


def wal_lsn(conn: Any) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0])


class Meter:
    """Server CPU and WAL between :meth:`start` and :meth:`stop` (an admin connection)."""

    def __init__(self, admin: Any, pid: int | None) -> None:
        self.admin, self.pid = admin, pid
        self.cpu0: float | None = None
        self.wal0 = 0
        self.statements_available = True

    def start(self) -> None:
        # Every system starts from a checkpoint, so each pays the same full-page images
        # (the first change of every page after a checkpoint logs the whole page).
        self.admin.execute("CHECKPOINT")
        try:
            self.admin.execute("SELECT pg_stat_statements_reset()")
        except Exception:  # the extension is missing: CPU and WAL still work
            self.statements_available = False
        self.wal0 = wal_lsn(self.admin)
        self.cpu0 = server_cpu_seconds(self.pid)

    def reading(self, runs: int, poller_cpu_s: float = 0.0) -> dict[str, Any]:
        """CPU and WAL since :meth:`start`, per run, without stopping; the CPU of the
        benchmark's own polling backend (``poller_cpu_s``) is taken out."""
        cpu1 = server_cpu_seconds(self.pid)
        wal1 = wal_lsn(self.admin)
        cpu = (None if cpu1 is None or self.cpu0 is None
               else cpu1 - self.cpu0 - poller_cpu_s)
        return {
            "server_cpu_s": cpu,
            "cpu_ms_per_run": None if cpu is None else 1000 * cpu / runs,
            "wal_bytes": wal1 - self.wal0,
            "wal_bytes_per_run": (wal1 - self.wal0) / runs,
        }

    def stop(self, runs: int, datname: str, poller_cpu_s: float = 0.0) -> dict[str, Any]:
        out = self.reading(runs, poller_cpu_s)
        out["poller_cpu_s"] = poller_cpu_s
        if self.statements_available:
            out.update(statements(self.admin, datname, runs))
        return out


def statements(admin: Any, datname: str, runs: int, top: int = 12) -> dict[str, Any]:
    rows = admin.execute(
        "SELECT s.query, s.calls, s.total_exec_time, s.rows, s.wal_bytes "
        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = %s ORDER BY s.total_exec_time DESC", (datname,)).fetchall()
    polls = [r for r in rows if POLL_MARK in str(r[0])]
    rows = [r for r in rows if POLL_MARK not in str(r[0])]
    total_ms = sum(float(r[2]) for r in rows)
    listed = [{
        "query": " ".join(str(r[0]).split())[:160],
        "calls_per_run": int(r[1]) / runs,
        "ms_per_run": float(r[2]) / runs,
        "share": float(r[2]) / total_ms if total_ms else None,
        "wal_bytes_per_run": float(r[4] or 0) / runs,
    } for r in rows[:top]]
    return {"exec_ms_per_run": total_ms / runs,
            "poll_exec_ms": sum(float(r[2]) for r in polls),
            "calls_per_run": sum(int(r[1]) for r in rows) / runs,
            "top_statements": listed}


class WaitSampler:
    """Samples what the database's backends wait on, every ``interval`` seconds."""

    def __init__(self, connect: Any, datname: str, interval: float = 0.005) -> None:
        self.connect, self.datname, self.interval = connect, datname, interval
        self.waits: Counter[str] = Counter()
        self.locks: Counter[str] = Counter()
        self.samples = 0
        self.active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-wait-sampler", daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        activity = ("SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, "
                    "'running') FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                    "AND pid <> pg_backend_pid()")
        ungranted = ("SELECT l.locktype || ':' || coalesce(c.relname, l.objid::text, '') "
                     "|| ':' || l.mode FROM pg_locks l LEFT JOIN pg_class c "
                     "ON c.oid = l.relation WHERE NOT l.granted")
        with self.connect() as conn:
            while not self._stop.is_set():
                rows = conn.execute(activity, (self.datname,)).fetchall()
                self.samples += 1
                self.active += len(rows)
                self.waits.update(str(r[0]) for r in rows)
                self.locks.update(str(r[0]) for r in conn.execute(ungranted).fetchall())
                time.sleep(self.interval)

    def report(self, top: int = 8) -> dict[str, Any]:
        """Mean backends per sample in each state: 1.0 = one backend there all the time."""
        n = self.samples or 1
        return {
            "samples": self.samples,
            "active_backends_mean": self.active / n,
            "wait_events": {k: round(v / n, 3) for k, v in self.waits.most_common(top)},
            "ungranted_locks": {k: round(v / n, 3) for k, v in self.locks.most_common(top)},
        }


def table_bytes(url: str, n: int) -> dict[str, float]:
    """Bytes on disk per run of each table (indexes and TOAST included) over 1 KiB/run."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT relname, pg_total_relation_size(relid) "
                            "FROM pg_stat_user_tables ORDER BY 2 DESC").fetchall()
    sizes = {str(name): int(size) / n for name, size in rows}
    return {"total": sum(sizes.values()),
            **{name: size for name, size in sizes.items() if size >= 1024}}
