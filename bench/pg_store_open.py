"""What a PostgreSQL test pays before its first query: clone a database, open a store on it.

The suite clones every test's database from one template (``tests/conftest.py``). Cloned
from an empty template, the store's open applies every migration; cloned from a migrated
one, it finds them recorded and applies none. This times both on one embedded server, the
two kinds interleaved round by round so that whatever else the machine runs weighs on
both alike, and prints the mean and median of each (clone, open, both), in milliseconds.

    python bench/pg_store_open.py [-n 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.postgres import EmbeddedPostgres  # a test harness, not the product

from soloist.store import open_store

KINDS = ("empty", "migrated")


def one_round(server: EmbeddedPostgres, template: str, name: str) -> tuple[float, float]:
    """(clone seconds, open-and-close seconds) of one fresh database."""
    started = time.perf_counter()
    url = server.create_database(name, template=template)
    cloned = time.perf_counter()
    open_store(url).close()
    opened = time.perf_counter()
    server.drop_database(name)
    return cloned - started, opened - cloned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="rounds (one database of each kind)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures: dict[str, dict[str, list[float]]] = {k: {"clone": [], "open": []} for k in KINDS}
    with EmbeddedPostgres(fast=True) as server:
        server.create_database("bench_empty", template="template0")
        migrated = server.create_database("bench_migrated", template="template0")
        open_store(migrated).close()
        for i in range(args.n + 1):
            for kind in KINDS:
                clone, opening = one_round(server, f"bench_{kind}", f"bench_{kind}_{i}")
                if i:  # the first round warms the server's and Python's caches
                    figures[kind]["clone"].append(clone)
                    figures[kind]["open"].append(opening)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        times = figures[kind]
        times["both"] = [a + b for a, b in zip(times["clone"], times["open"], strict=True)]
        report[kind] = {
            what: {"mean_ms": round(statistics.fmean(xs) * 1000, 1),
                   "median_ms": round(statistics.median(xs) * 1000, 1)}
            for what, xs in times.items()
        }
    if args.json:
        print(json.dumps({"rounds": args.n, **report}))
        return
    print(f"{args.n} rounds, milliseconds (mean / median)")
    print(f"{'template':<10}{'clone':>16}{'open store':>16}{'both':>16}")
    for kind in KINDS:
        cells = [f"{r['mean_ms']:.1f} / {r['median_ms']:.1f}" for r in report[kind].values()]
        print(f"{kind:<10}" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()
