"""pgvector: the PostgreSQL store's own vector index over the current chunks.

One table, ``chunk_vectors``, made when the first embedding model is recorded (a
``vector(n)`` column needs the dimension) with an HNSW index on cosine distance. The
chunks keep their float32 vectors too: the index can always be rebuilt from them, on a
server that gains the extension later or after a re-embed.

A namespace filter that matches few vectors is searched exactly (its index, then a sort by
distance); one that matches many runs as HNSW's iterative scan (pgvector 0.8), which
keeps walking until k results pass the filter.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from soloist.store.seam import Connection

EF_SEARCH = 100
"""Candidates HNSW keeps per query (pgvector's default is 40): recall over speed."""

EXACT_BELOW = 20_000
"""A namespace filter matching fewer vectors than this is searched exactly (the namespace
index, then a sort by distance): faster there than a filtered HNSW walk, which visits
nodes of every namespace (at 50k vectors over 20 namespaces: ~5 ms against ~38 ms)."""

_RESET = (
    "DROP TABLE IF EXISTS chunk_vectors",
    "CREATE TABLE chunk_vectors (chunk_id BIGINT PRIMARY KEY, namespace TEXT NOT NULL, "
    "embedding vector({dim}) NOT NULL)",
    "CREATE INDEX chunk_vectors_hnsw ON chunk_vectors USING hnsw "
    "(embedding vector_cosine_ops)",
    "CREATE INDEX chunk_vectors_namespace ON chunk_vectors (namespace text_pattern_ops)",
)
_INSERT = """
INSERT INTO chunk_vectors (chunk_id, namespace, embedding)
VALUES (%(id)s, %(namespace)s, %(embedding)s::vector)
ON CONFLICT (chunk_id) DO UPDATE SET embedding = excluded.embedding
"""
_RETIRE = """
DELETE FROM chunk_vectors WHERE chunk_id IN (
    SELECT id FROM chunks WHERE namespace = %(namespace)s AND doc_key = %(doc_key)s
      AND current = 1)
"""
_COUNT = """
SELECT count(*) AS n FROM (SELECT 1 FROM chunk_vectors WHERE namespace LIKE %(pattern)s
                           LIMIT %(cap)s) AS matching
"""
_NEAREST = """
SELECT chunk_id, embedding <=> %(q)s::vector AS distance FROM chunk_vectors
WHERE namespace LIKE %(pattern)s
ORDER BY embedding <=> %(q)s::vector LIMIT %(k)s
"""


def literal(blob: bytes) -> str:
    """A float32 vector as pgvector's text form, '[x,y,...]'."""
    values = array("f")
    values.frombytes(blob)
    return "[" + ",".join(f"{x:.7g}" for x in values) + "]"


class PgVectors:
    def __init__(self, version: str) -> None:
        self.name = f"pgvector {version}"

    def reset(self, conn: Connection, dim: int) -> None:
        for statement in _RESET:
            conn.run(statement.format(dim=int(dim)))

    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        conn.run_many(_INSERT, [{"id": i, "namespace": ns, "embedding": literal(blob)}
                                for i, ns, blob in rows])

    def retire(self, conn: Connection, namespace: str, doc_key: str) -> None:
        conn.run(_RETIRE, {"namespace": namespace, "doc_key": doc_key})

    def nearest(self, conn: Connection, vector: bytes, namespace_pattern: str,
                k: int) -> list[int]:
        params = {"q": literal(vector), "pattern": namespace_pattern, "k": k}
        exact = namespace_pattern != "%" and conn.fetch(
            _COUNT, {"pattern": namespace_pattern, "cap": EXACT_BELOW})[0]["n"] < EXACT_BELOW
        # SET LOCAL: for this (read) transaction only, the pooled connection keeps nothing.
        if exact:
            conn.run("SET LOCAL enable_indexscan = off")  # the HNSW index is an index scan
            rows = conn.fetch(_NEAREST, params)
            conn.run("SET LOCAL enable_indexscan = on")
        else:
            conn.run("SET LOCAL hnsw.iterative_scan = relaxed_order")
            conn.run(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, int(k))}")
            rows = conn.fetch(_NEAREST, params)
        # relaxed_order may return a few rows slightly out of order: sort them exactly.
        return [r["chunk_id"] for r in sorted(rows, key=lambda r: r["distance"])]
