"""Memory at scale: synthetic facts and documents, ingestion rate and hybrid query latency.

Half the items are facts (``memory.put``), half are short documents embedded with the
default local model. Then hybrid queries (FTS + exact vectors, fused) are timed. The same
on PostgreSQL when the embedded server is available.

    python bench/memory_scale.py [--items N] [--queries Q] [--json] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

from soloist.memory.documents import Documents
from soloist.memory.facts import Cause, Memory
from soloist.store import open_store
from soloist.store.base import Store

WORDS = ("invoice payment customer refund contract meeting project budget deadline "
         "shipment order supplier quote proposal renewal discount support ticket bug "
         "release roadmap hiring salary tax report audit review plan pricing trial").split()
GOAL_P95_MS = 50.0
# Durable, and sized as a deployment on this machine (24 GB) would be, not as PostgreSQL's
# packaging default (128 MB of shared buffers, meant for the smallest machines).
PG_SETTINGS = {"shared_buffers": "1GB", "effective_cache_size": "4GB"}


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) + "."


def run(store: Store, items: int, queries: int, seed: int = 7) -> dict[str, Any]:
    from soloist.memory.embeddings import default_embedder

    rng = random.Random(seed)
    memory = Memory(store)
    docs = Documents(store, default_embedder())
    cause = Cause("bench:scale", "synthetic load")
    n_facts, n_docs = items // 2, items - items // 2
    started = time.perf_counter()
    for start in range(0, n_facts, 1000):
        with store.transaction() as tx:
            for i in range(start, min(n_facts, start + 1000)):
                memory.put_in(tx, f"ns{i % 20}", f"subject{i}", "status", sentence(rng), cause)
    for start in range(0, n_docs, 512):
        batch = [(f"ns{i % 20}", f"doc{i}", sentence(rng), {"n": i})
                 for i in range(start, min(n_docs, start + 512))]
        docs.add_many(batch, cause)
    ingest_s = time.perf_counter() - started
    docs.search("warm up the cache", "ns*", 10)
    latencies = []
    for _ in range(queries):
        query = " ".join(rng.choice(WORDS) for _ in range(4))
        t = time.perf_counter()
        docs.search(query, f"ns{rng.randint(0, 19)}", 10)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    return {
        "items": items,
        "ingest_items_per_s": items / ingest_s,
        "query_p50_ms": statistics.median(latencies),
        "query_p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "vector_search": docs.status()["search"],
    }


def compare_engines(store: Store, queries: int, seed: int = 11) -> dict[str, Any]:
    """The vector search alone, on the store's vectors: Soloist's exact in-memory search
    beside sqlite-vec's brute-force ``vec0`` scan (the baseline), same queries, k = 50."""
    from soloist.memory.embeddings import default_embedder
    from soloist.memory.vectors import VectorCache

    embedder = default_embedder()
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(4)) for _ in range(queries)]
    namespaces = [f"ns{rng.randint(0, 19)}" for _ in range(queries)]
    vectors = embedder.embed(texts)
    cache = VectorCache(embedder.name)
    cache.refresh(store)

    def timed(search: Any) -> tuple[list[float], list[list[int]]]:
        latencies, results = [], []
        for q, ns in zip(vectors, namespaces, strict=True):
            t = time.perf_counter()
            results.append(search(q, ns))
            latencies.append((time.perf_counter() - t) * 1000)
        return sorted(latencies), results

    ours, ours_ids = timed(lambda q, ns: cache.nearest(q, ns, 50))
    figures: dict[str, Any] = {"vector_memory_p50_ms": statistics.median(ours),
                               "vector_memory_p95_ms": ours[int(0.95 * (len(ours) - 1))]}
    try:
        import pysqlite3.dbapi2 as sqlite  # type: ignore[import-not-found]
        import sqlite_vec  # type: ignore[import-not-found]
    except ImportError:
        figures["sqlite_vec_unavailable"] = "pip install pysqlite3-binary sqlite-vec"
        return figures
    with store.read() as tx:
        rows = tx.documents.vectors(embedder.name)
    db = sqlite.connect(":memory:")
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(chunk_id INTEGER PRIMARY KEY, "
               f"namespace TEXT, embedding FLOAT[{len(vectors[0])}] distance_metric=cosine)")
    db.executemany("INSERT INTO v VALUES (?, ?, ?)", rows)
    sql = ("SELECT chunk_id FROM v WHERE embedding MATCH ? AND k = 50 AND namespace = ? "
           "ORDER BY distance")
    theirs, theirs_ids = timed(lambda q, ns: [r[0] for r in db.execute(
        sql, (array("f", q).tobytes(), ns))])
    agree = statistics.mean(len(set(a[:10]) & set(b[:10])) / 10
                            for a, b in zip(ours_ids, theirs_ids, strict=True))
    figures.update({
        "vector_sqlite_vec_p50_ms": statistics.median(theirs),
        "vector_sqlite_vec_p95_ms": theirs[int(0.95 * (len(theirs) - 1))],
        "vector_speedup_vs_sqlite_vec": statistics.median(theirs) / statistics.median(ours),
        "vector_top10_agreement": agree,
    })
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="soloist-memscale-"))
    path = folder / "state.db"
    store = open_store(f"sqlite:///{path}")
    figures = run(store, args.items, args.queries)
    figures.update(compare_engines(store, args.queries))
    store.close()
    figures["db_mb"] = sum(p.stat().st_size for p in folder.glob("state.db*")) / 1e6
    if not args.skip_postgres:
        try:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from support.postgres import EmbeddedPostgres  # a test harness, not the product

            with EmbeddedPostgres(fast=False, settings=PG_SETTINGS) as server:
                url = server.create_database("memscale")
                pg = open_store(url)
                pg_figures = run(pg, args.items, args.queries)
                pg.close()
            figures.update({f"pg_{k}": v for k, v in pg_figures.items() if k != "items"})
            figures["pg_settings"] = PG_SETTINGS
        except Exception as exc:  # report, do not hide: the SQLite figures still stand
            figures["pg_unavailable"] = f"{type(exc).__name__}: {exc}"
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["goal_query_p95_ms"] = GOAL_P95_MS
    print(f"{'figure':<26} {'SQLite':>10} {'PostgreSQL':>12}")
    for key in ("ingest_items_per_s", "query_p50_ms", "query_p95_ms"):
        pg_value = figures.get(f"pg_{key}")
        pg_text = f"{pg_value:>12.1f}" if isinstance(pg_value, float) else f"{'n/a':>12}"
        print(f"{key:<26} {figures[key]:>10.1f} {pg_text}")
    if "vector_sqlite_vec_p50_ms" in figures:
        print(f"vector search alone, k=50, one namespace: in memory "
              f"{figures['vector_memory_p50_ms']:.2f} ms p50 vs sqlite-vec vec0 "
              f"{figures['vector_sqlite_vec_p50_ms']:.2f} ms p50: "
              f"{figures['vector_speedup_vs_sqlite_vec']:.1f}x; top-10 agreement "
              f"{figures['vector_top10_agreement']:.3f}")
    verdict = "PASS" if figures["query_p95_ms"] < GOAL_P95_MS else "FAIL"
    print(f"query p95 goal < {GOAL_P95_MS:.0f} ms on SQLite: {verdict}; items {args.items}, "
          f"db {figures['db_mb']:.1f} MB, peak RSS {figures['peak_rss_mb']:.0f} MB")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
