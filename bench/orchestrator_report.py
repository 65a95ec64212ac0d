"""The orchestrator benchmark's report: the table, the profile text, the goals.

Split from ``orchestrator.py``, which measures; this only formats what it measured.
"""

from __future__ import annotations

import math
import os
from typing import Any

GOALS = {
    "sqlite_runs_per_s": 2000.0,
    "sqlite_steps_per_s": 6000.0,
    "ratio_vs_dbos": 10.0,
    "latency_p50_ms": 5.0,
    "latency_p99_ms": 50.0,
    "pg_scaling": 2.5,
}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _short(text: Any, width: int = 100) -> str:
    """One line of an error for the table (the JSON keeps it whole)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if len(lines) > 1:
        lines = [lines[0], lines[-1]]
    line = " ... ".join(lines)
    return line if len(line) <= width else line[: width - 3] + "..."


def ratio(a: Any, b: Any) -> float | None:
    if a is None or b in (None, 0):
        return None
    return float(a) / float(b)


def _status(value: Any, goal: float, higher: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value >= goal if higher else value < goal
    return "PASS" if ok else "FAIL"


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def add(name: str, value: str, base: str = "", ratio: str = "", goal: str = "",
            status: str = "") -> None:
        rows.append((name, value, base, ratio, goal, status))

    raw = r.get("raw_commits_per_s")
    add("raw SQLite commits/s (WAL, sync=NORMAL)", _fmt(raw), "physical reference")
    sr, ss = r.get("sqlite_runs_per_s"), r.get("sqlite_steps_per_s")
    add(f"Soloist SQLite runs/s (drain, c={r.get('sqlite_concurrency')})", _fmt(sr),
        f"raw commits/s {_fmt(raw)}", _fmt(ratio(sr, raw), " runs/commit-time"),
        ">= 2,000", _status(sr, GOALS["sqlite_runs_per_s"]))
    add("Soloist SQLite steps/s", _fmt(ss), f"raw commits/s {_fmt(raw)}",
        _fmt(ratio(ss, raw), " steps/commit-time"), ">= 6,000",
        _status(ss, GOALS["sqlite_steps_per_s"]))
    add("  commits during the drain", _fmt(r.get("sqlite_drain_commits")),
        f"{_fmt(3 * r['runs'])} steps", _fmt(r.get("sqlite_steps_per_commit"),
                                             " steps/commit"))
    add("  process CPU during the drain", _fmt(r.get("sqlite_drain_cpu_s"), " s"),
        f"wall {_fmt(r.get('sqlite_drain_s'), ' s')}",
        _fmt(r.get("sqlite_cpu_us_per_step"), " us CPU/step"))
    add("  Soloist enqueue runs/s (1 tx)", _fmt(r.get("sqlite_enqueue_per_s")))
    dr = r.get("dbos_runs_per_s")
    add(f"DBOS {r.get('dbos_version') or ''} SQLite runs/s (drain)".replace("  ", " "),
        _fmt(dr) if dr is not None else f"n/a ({_short(r.get('dbos_unavailable', 'skipped'))})")
    add("  DBOS enqueue runs/s (1 tx/run)", _fmt(r.get("dbos_enqueue_per_s")),
        f"journal_mode={r.get('dbos_journal_mode')}, synchronous={r.get('dbos_synchronous')}")
    add("Soloist / DBOS runs/s", _fmt(r.get("ratio_vs_dbos"), "x"),
        f"DBOS {_fmt(dr)} runs/s", _fmt(r.get("ratio_vs_dbos"), "x"), ">= 10x",
        _status(r.get("ratio_vs_dbos"), GOALS["ratio_vs_dbos"]))
    add("latency p50 enqueue->claim, SQLite", _fmt(r.get("latency_p50_ms"), " ms"), "", "",
        "< 5 ms", _status(r.get("latency_p50_ms"), GOALS["latency_p50_ms"], higher=False))
    add("latency p99 enqueue->claim, SQLite", _fmt(r.get("latency_p99_ms"), " ms"), "", "",
        "< 50 ms", _status(r.get("latency_p99_ms"), GOALS["latency_p99_ms"], higher=False))
    add("  p50/p99 enqueue->step a executing",
        f"{_fmt(r.get('exec_latency_p50_ms'))}/{_fmt(r.get('exec_latency_p99_ms'))} ms")
    add("  p50/p99 enqueue->run done (3 steps)",
        f"{_fmt(r.get('run_latency_p50_ms'))}/{_fmt(r.get('run_latency_p99_ms'))} ms")
    if r.get("pg_unavailable") or r.get("pg_error"):
        add("PostgreSQL", f"n/a ({_short(r.get('pg_unavailable') or r.get('pg_error'))})")
    if not r.get("pg_unavailable"):
        p1, p4 = r.get("pg_runs_per_s_1"), r.get("pg_runs_per_s_4")
        praw = r.get("pg_raw_commits_per_s")
        add("raw PG commits/s (fsync on, 1 conn)", _fmt(praw), "physical reference")
        add(f"Soloist PG runs/s, 1 worker proc (c={r.get('pg_worker_concurrency')})",
            _fmt(p1), f"raw PG commits/s {_fmt(praw)}", _fmt(ratio(p1, praw),
                                                            " runs/commit-time"))
        add("  PG transactions during the 1-proc drain", _fmt(r.get("pg_commits_1")),
            f"{_fmt(3 * r['runs'])} steps",
            _fmt(ratio(3 * r["runs"], r.get("pg_commits_1")), " steps/tx"))
        add("Soloist PG runs/s, 4 worker procs", _fmt(p4), f"1 proc {_fmt(p1)}",
            _fmt(r.get("pg_scaling"), "x"), ">= 2.5x",
            _status(r.get("pg_scaling"), GOALS["pg_scaling"]))
        add("  PG transactions during the 4-proc drain", _fmt(r.get("pg_commits_4")),
            f"{_fmt(3 * r['runs'])} steps",
            _fmt(ratio(3 * r["runs"], r.get("pg_commits_4")), " steps/tx"))
        add("  worker CPU s, 1 proc / 4 procs",
            f"{_fmt(r.get('pg_worker_cpu_s_1'))} / {_fmt(r.get('pg_worker_cpu_s_4'))}")
        add("  machine CPU busy, 1 proc / 4 procs",
            f"{_pct(r.get('pg_cpu_busy_1'))} / {_pct(r.get('pg_cpu_busy_4'))}",
            f"{os.cpu_count()} CPUs in all")
        h1, h4 = r.get("pg_hosts_runs_per_s_1"), r.get("pg_hosts_runs_per_s_4")
        add("  workers on a namespace host, server on another: 4 procs", _fmt(h4),
            f"1 proc {_fmt(h1)}", _fmt(r.get("pg_hosts_scaling_4_vs_1"), "x"), ">= 2.5x",
            _status(r.get("pg_hosts_scaling_4_vs_1"), GOALS["pg_scaling"]))
        add("latency p50 enqueue->claim, PG", _fmt(r.get("pg_latency_p50_ms"), " ms"), "", "",
            "< 5 ms", _status(r.get("pg_latency_p50_ms"), GOALS["latency_p50_ms"], False))
        add("latency p99 enqueue->claim, PG", _fmt(r.get("pg_latency_p99_ms"), " ms"), "", "",
            "< 50 ms", _status(r.get("pg_latency_p99_ms"), GOALS["latency_p99_ms"], False))
        add("  p50/p99 enqueue->run done, PG",
            f"{_fmt(r.get('pg_run_latency_p50_ms'))}/{_fmt(r.get('pg_run_latency_p99_ms'))} ms")
        add("  ready notifications per run, light load", _fmt(r.get("pg_notifies_per_run")),
            "each wakes every idle worker")
        add("  PG server CPU busy, 1 proc / 4 procs",
            f"{_pct(r.get('pg_server_cpu_busy_1'))} / {_pct(r.get('pg_server_cpu_busy_4'))}",
            "of all CPUs, from /proc")
        cpu, wal = r.get("pg_server_cpu_ms_per_run"), r.get("pg_wal_bytes_per_run")
        add("Soloist PG server CPU-ms per run (1 proc)", _fmt(cpu), "", "", "< both peers",
            "n/a" if cpu is None else
            ("PASS" if all(cpu < (r.get(f"{p}_pg_server_cpu_ms_per_run") or math.inf)
                           for p in ("dbos", "procrastinate")) else "FAIL"))
        add("  of which statements' execution time", _fmt(r.get("pg_exec_ms_per_run"), " ms"),
            f"{_fmt(r.get('pg_statements_per_run'))} statements/run")
        add("  of which starting the run (ws.start)", _fmt(r.get("pg_enqueue_cpu_ms_per_run")))
        add("Soloist PG WAL bytes per run (1 proc)", _fmt(wal))
        add("  table bytes per run (indexes in)",
            _fmt((r.get("pg_table_bytes_per_run") or {}).get("total")),
            "DBOS " + _fmt((r.get("dbos_pg_table_bytes_per_run") or {}).get("total"))
            + ", Procrastinate "
            + _fmt((r.get("procrastinate_pg_table_bytes_per_run") or {}).get("total")))
        add("  CPU-ms / WAL bytes per run, 4 procs",
            f"{_fmt(r.get('pg_server_cpu_ms_per_run_4'))} / "
            f"{_fmt(r.get('pg_wal_bytes_per_run_4'))}")
        for peer in ("dbos", "procrastinate"):
            if r.get(f"{peer}_pg_unavailable"):
                add(f"{peer} on PG", f"n/a ({_short(r[f'{peer}_pg_unavailable'])})")
                continue
            pc, pw = (r.get(f"{peer}_pg_server_cpu_ms_per_run"),
                      r.get(f"{peer}_pg_wal_bytes_per_run"))
            add(f"{peer} {r.get(f'{peer}_version') or ''} PG server CPU-ms per run", _fmt(pc),
                f"Soloist {_fmt(cpu)}", _fmt(r.get(f"pg_server_cpu_ms_per_run_vs_{peer}"),
                                             "x Soloist/peer"))
            add(f"  {peer} PG WAL bytes per run", _fmt(pw), f"Soloist {_fmt(wal)}",
                _fmt(r.get(f"pg_wal_bytes_per_run_vs_{peer}"), "x Soloist/peer"))
            add(f"  {peer} PG runs/s (drain, 1 proc)", _fmt(r.get(f"{peer}_pg_runs_per_s")),
                f"Soloist {_fmt(r.get('pg_runs_per_s_1'))}",
                _fmt(r.get(f"pg_runs_per_s_vs_{peer}"), "x Soloist/peer"))
    add("peak RSS, this process", _fmt(r.get("peak_rss_mb"), " MB"),
        f"largest child {_fmt(r.get('peak_rss_children_mb'), ' MB')}")
    header = ("figure", "value", "baseline", "ratio", "goal", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(6)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def profile_text(r: dict[str, Any]) -> str:
    """Where the database time goes: top statements per run, and what backends wait on."""
    lines: list[str] = []
    for key, title in (("pg_top_statements", "Soloist, 1 worker process"),
                       ("pg_top_statements_4", "Soloist, 4 worker processes"),
                       ("dbos_pg_top_statements", "DBOS"),
                       ("procrastinate_pg_top_statements", "Procrastinate")):
        top = r.get(key)
        if not top:
            continue
        lines.append(f"\nTop statements by total execution time, {title} (per run):")
        lines.append(f"  {'ms/run':>7} {'share':>6} {'calls':>6} {'WAL B':>7}  statement")
        for st in top:
            lines.append(f"  {st['ms_per_run']:7.3f} {_pct(st['share']):>6} "
                         f"{st['calls_per_run']:6.2f} {st['wal_bytes_per_run']:7.0f}  "
                         f"{st['query'][:90]}")
    waits = r.get("pg_waits_4")
    if waits:
        lines.append(f"\nWhat Soloist's backends did, 4 worker processes ({waits['samples']} "
                     f"samples; mean backends per sample, "
                     f"{waits['active_backends_mean']:.2f} active in all):")
        for name, mean in waits["wait_events"].items():
            lines.append(f"  {mean:6.3f}  {name}")
        lines.append("Ungranted locks (mean per sample):")
        for name, mean in (waits["ungranted_locks"] or {"none": 0.0}).items():
            lines.append(f"  {mean:6.3f}  {name}")
    return "\n".join(lines)
