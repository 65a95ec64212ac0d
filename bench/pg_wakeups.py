"""What one wake-up costs when many idle workers listen: the fan-out of NOTIFY.

    python bench/pg_wakeups.py [--workers 20] [--notifies 100] [--json]

Starts ``--workers`` idle Soloist workers (each its own workspace and store, so its own
LISTEN connection, as separate processes would have; threads of this process), then
commits ``--notifies`` transactions that each send the ready notification and make no
step ready (the worst case: everyone wakes, nobody finds work), one every 50 ms. It
reports, per notification and per listening worker, the transactions the server ran
(``xact_commit + xact_rollback`` of the database) and the server CPU (every PostgreSQL process, from
/proc), from which docs/scaling.md extrapolates to 1,000 workers. The idle baseline (the
same workers for the same time with no notification) is measured first and subtracted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pg_cost

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--notifies", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import psycopg
    from orchestrator import make_workspace, open_workspace
    from support.postgres import EmbeddedPostgres

    from soloist.workspace import Workspace

    interval = 0.05
    with EmbeddedPostgres(fast=False, max_connections=400, settings=pg_cost.SETTINGS) as pg:
        url = pg.create_database("bench_wakeups")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        root = make_workspace(Path(tempfile.mkdtemp(prefix="soloist-wakeups-")) / "ws")
        open_workspace(root, url).close()
        pid = pg_cost.postmaster_pid(pg.data_dir)
        spaces = [Workspace(root, database_url=url) for _ in range(args.workers)]
        workers = [ws.worker(concurrency=8) for ws in spaces]
        threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        time.sleep(2.0)  # every worker is idle, listening
        admin = psycopg.connect(url, autocommit=True)

        def commits() -> int:
            admin.execute("SELECT pg_stat_force_next_flush()")
            row = admin.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                "WHERE datname = current_database()").fetchone()
            return int(row[0]) if row else 0

        def window(notify: bool) -> tuple[int, float]:
            c0, cpu0 = commits(), pg_cost.server_cpu_seconds(pid) or 0.0
            for _ in range(args.notifies):
                if notify:
                    with spaces[0].store.transaction() as tx:
                        tx.notify_ready()
                time.sleep(interval)
            time.sleep(0.5)  # the last wake-ups finish
            return commits() - c0, (pg_cost.server_cpu_seconds(pid) or 0.0) - cpu0

        idle_tx, idle_cpu = window(notify=False)
        admin.execute("SELECT pg_stat_statements_reset()")
        busy_tx, busy_cpu = window(notify=True)
        top = pg_cost.statements(admin, "bench_wakeups", args.notifies * args.workers, top=8)
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)
        for ws in spaces:
            ws.close()
        admin.close()
    per = args.notifies * args.workers
    result: dict[str, Any] = {
        "workers": args.workers, "notifies": args.notifies,
        "idle_transactions": idle_tx, "notify_transactions": busy_tx,
        "transactions_per_wakeup_per_worker": (busy_tx - idle_tx - args.notifies) / per,
        "server_cpu_ms_per_wakeup_per_worker": 1000 * (busy_cpu - idle_cpu) / per,
        "exec_ms_per_wakeup_per_worker": top["exec_ms_per_run"],
        "top_statements": top["top_statements"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for st in result.pop("top_statements"):
            print(f"{st['ms_per_run']:.3f} ms {st['calls_per_run']:.2f} calls  {st['query'][:90]}")
        for key, value in result.items():
            print(f"{key:40} {value:.3f}" if isinstance(value, float) else f"{key:40} {value}")


if __name__ == "__main__":
    main()
