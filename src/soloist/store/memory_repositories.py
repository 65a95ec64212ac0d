"""The memory plane's aggregates (facts, documents) over the same named-query seam."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from typing import Any

from soloist.store.base import (
    ChunkFilter,
    ChunkRow,
    DocumentRow,
    EmbeddingModel,
    FactRow,
    NewDocument,
    ThreadChunk,
)
from soloist.store.seam import Connection, Row, VectorOps, dumps, loads


def _fact(row: Row) -> FactRow:
    return FactRow(
        namespace=row["namespace"], subject=row["subject"], key=row["key"],
        version=row["version"], op=row["op"], value=loads(row["value"]), actor=row["actor"],
        reason=row["reason"], run_id=row["run_id"], step_id=row["step_id"],
        reverts=row["reverts"], valid_from=row["valid_from"], valid_to=row["valid_to"],
        expires_at=row["expires_at"], recorded_at=row["recorded_at"],
        sources=loads(row.get("sources")),
    )


class SqlFacts:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def append(self, row: FactRow) -> int:
        ident = {"namespace": row.namespace, "subject": row.subject, "key": row.key}
        self.conn.fetch(self.q.lock_fact, ident)
        version = int(self.conn.fetch(self.q.fact_last_version, ident)[0]["v"]) + 1
        self.conn.run(self.q.insert_fact, {
            **ident, "version": version, "op": row.op,
            "value": None if row.value is None and row.op == "forget" else dumps(row.value),
            "actor": row.actor, "reason": row.reason, "run_id": row.run_id,
            "step_id": row.step_id, "reverts": row.reverts, "valid_from": row.valid_from,
            "valid_to": row.valid_to, "expires_at": row.expires_at,
            "recorded_at": row.recorded_at,
            "sources": None if not row.sources else dumps(row.sources),
        })
        return version

    def history(self, namespace: str, subject: str, key: str) -> builtins.list[FactRow]:
        params = {"namespace": namespace, "subject": subject, "key": key}
        return [_fact(r) for r in self.conn.fetch(self.q.fact_history, params)]

    def by_run(self, run_id: str) -> builtins.list[FactRow]:
        return [_fact(r) for r in self.conn.fetch(self.q.facts_by_run, {"run_id": run_id})]

    def latest(self, namespace_pattern: str, subject: str | None,
               limit: int) -> builtins.list[FactRow]:
        params = {"pattern": namespace_pattern, "subject": subject, "limit": limit}
        return [_fact(r) for r in self.conn.fetch(self.q.facts_latest_in, params)]

    def search(self, tokens: builtins.list[str], namespace_pattern: str, subject: str | None,
               at: float, k: int) -> builtins.list[tuple[FactRow, float]]:
        if not tokens:
            return []
        params = {"query": self.q.fts_query(tokens), "pattern": namespace_pattern,
                  "subject": subject, "at": at, "k": k}
        return [(_fact(r), float(r["score"])) for r in self.conn.fetch(self.q.fact_search,
                                                                        params)]


def _document(row: Row) -> DocumentRow:
    return DocumentRow(row["namespace"], row["doc_key"], row["version"], row["text"],
                       loads(row["metadata"]), row["actor"], row["reason"], row["run_id"],
                       row["step_id"], row["created_at"])


def _chunk(row: Row) -> ChunkRow:
    return ChunkRow(row["id"], row["namespace"], row["doc_key"], row["seq"], row["text"],
                    loads(row["metadata"]), row["created_at"], float(row.get("score") or 0.0))


class SqlDocuments:
    """Documents, their chunks, and the store's own vector index when it has one.

    The index (``vectors``: pgvector) follows the chunks in the same transaction, but
    only for the recorded embedding model and only while it is complete (``indexed``):
    otherwise searches fall back to an exact search in memory.
    """

    REINDEX_BATCH = 2000

    def __init__(self, conn: Connection, q: Any, vectors: VectorOps | None = None) -> None:
        self.conn, self.q, self.index = conn, q, vectors
        self._model: EmbeddingModel | None = None
        self._model_read = False
        self._locked = False

    def add(self, doc: NewDocument) -> int:
        self._lock()
        ident = {"namespace": doc.namespace, "doc_key": doc.doc_key}
        version = int(self.conn.fetch(self.q.doc_last_version, ident)[0]["v"]) + 1
        metadata = dumps(doc.metadata)
        doc_id = self.conn.fetch(self.q.insert_document, {
            **ident, "version": version, "metadata": metadata, "text": doc.text,
            "actor": doc.actor, "reason": doc.reason, "run_id": doc.run_id,
            "step_id": doc.step_id, "created_at": doc.created_at})[0]["id"]
        indexing = self._indexing(doc.model) if doc.embeddings else None
        if indexing is not None and version > 1:
            indexing.retire(self.conn, doc.namespace, doc.doc_key)
        self.conn.run(self.q.retire_chunks, {**ident, "document_id": doc_id})
        rows = [
            {"document_id": doc_id, **ident, "seq": seq, "text": text, "metadata": metadata,
             "created_at": doc.created_at, "model": doc.model,
             "embedding": doc.embeddings[seq] if doc.embeddings else None,
             "thread": doc.thread, "position": doc.position, "context_of": None}
            for seq, text in enumerate(doc.chunks)
        ]
        if indexing is None:
            self.conn.run_many(self.q.insert_chunk, rows)
            return version
        # The index needs the new chunks' ids: one insert each, ids read back.
        indexed = []
        for row in rows:
            chunk_id = self.conn.fetch(self.q.insert_chunk_returning, row)[0]["id"]
            indexed.append((int(chunk_id), doc.namespace, row["embedding"]))
        indexing.add(self.conn, indexed)
        return version

    def history(self, namespace: str, doc_key: str) -> builtins.list[DocumentRow]:
        params = {"namespace": namespace, "doc_key": doc_key}
        return [_document(r) for r in self.conn.fetch(self.q.document_history, params)]

    def latest(self, namespace_pattern: str, limit: int) -> builtins.list[DocumentRow]:
        params = {"pattern": namespace_pattern, "limit": limit}
        return [_document(r) for r in self.conn.fetch(self.q.documents_latest_in, params)]

    def _lock(self) -> None:
        if not self._locked:
            self.conn.fetch(self.q.lock_documents)
            self._locked = True

    def _complete_index(self) -> tuple[VectorOps, str] | None:
        """The store's index and its model, while it holds every current chunk's vector."""
        current = self.embedding_model()
        if self.index is None or current is None or not current.indexed:
            return None
        return self.index, current.model

    def _indexing(self, model: str | None) -> VectorOps | None:
        complete = self._complete_index()
        return complete[0] if complete is not None and complete[1] == model else None

    def _match(self, tokens: builtins.list[str], namespace_pattern: str, k: int,
               where: ChunkFilter | None) -> dict[str, Any]:
        where = where or ChunkFilter()
        return {"query": self.q.fts_query(tokens, namespace_pattern),
                "pattern": namespace_pattern, "k": k, "depth": 4 * k,
                "subject": where.subject, "since": where.since, "until": where.until}

    def keyword(self, tokens: builtins.list[str], namespace_pattern: str, k: int,
                where: ChunkFilter | None = None) -> builtins.list[ChunkRow]:
        if not tokens:
            return []
        params = self._match(tokens, namespace_pattern, k, where)
        if not where:
            rows = self.conn.fetch(self.q.keyword_top, params)
            if len(rows) == k:
                return [_chunk(r) for r in rows]
        return [_chunk(r) for r in self.conn.fetch(self.q.keyword_chunks, params)]

    def keyword_context(self, tokens: builtins.list[str], namespace_pattern: str, k: int,
                        where: ChunkFilter | None = None) -> builtins.list[int]:
        if not tokens:
            return []
        params = self._match(tokens, namespace_pattern, k, where)
        return [r["id"] for r in self.conn.fetch(self.q.keyword_context, params)]

    def thread(self, namespace: str, thread: str, lo: int, hi: int,
               around: int = 0) -> builtins.list[ThreadChunk]:
        rows = self.conn.fetch(self.q.thread_chunks, {
            "namespace": namespace, "thread": thread, "lo": lo, "hi": hi, "n": around})
        chunks = [ThreadChunk(r["id"], r["document_id"], r["doc_key"], r["position"],
                              r["text"], r["metadata"], r["created_at"]) for r in rows]
        return sorted(chunks, key=lambda c: (c.position, c.id))

    def set_context(self, chunk: ThreadChunk, namespace: str, thread: str,
                    text: str) -> None:
        self.conn.run(self.q.retire_context, {"chunk_id": chunk.id,
                                              "document_id": chunk.document_id})
        self.conn.run(self.q.insert_chunk, {
            "document_id": chunk.document_id, "namespace": namespace,
            "doc_key": chunk.doc_key, "seq": 0, "text": text, "metadata": chunk.metadata,
            "created_at": chunk.created_at, "model": None, "embedding": None,
            "thread": thread, "position": chunk.position, "context_of": chunk.id})

    def vectors(self, model: str, after: int = 0,
                limit: int = 1_000_000) -> builtins.list[tuple[int, str, bytes]]:
        rows = self.conn.fetch(self.q.vector_chunks,
                               {"model": model, "after": after, "limit": limit})
        return [(r["id"], r["namespace"], bytes(r["embedding"])) for r in rows]

    def retired(self, after_document: int, upto: int) -> builtins.list[tuple[int, int]]:
        rows = self.conn.fetch(self.q.retired_chunks, {"after": after_document, "upto": upto})
        return [(r["id"], r["retired_by"]) for r in rows]

    def chunks(self, ids: Sequence[int]) -> builtins.list[ChunkRow]:
        if not ids:
            return []
        rows = self.conn.fetch(self.q.chunks_by_ids, {"ids": dumps(builtins.list(ids))})
        return [_chunk(r) for r in rows]

    def embedding_model(self) -> EmbeddingModel | None:
        if not self._model_read:
            rows = self.conn.fetch(self.q.embedding_model)
            self._model = (EmbeddingModel(rows[0]["model"], int(rows[0]["dim"]),
                                          bool(rows[0]["indexed"]),
                                          int(rows[0]["generation"])) if rows else None)
            self._model_read = True
        return self._model

    def use_model(self, model: str, dim: int) -> None:
        if self.index is not None:
            self.index.reset(self.conn, dim)
        self.conn.run(self.q.set_embedding_model, {
            "model": model, "dim": dim, "indexed": int(self.index is not None),
            "now": time.time()})
        self._model_read = False

    def stale(self, model: str, after: int, limit: int) -> builtins.list[tuple[int, str]]:
        rows = self.conn.fetch(self.q.stale_chunks,
                               {"model": model, "after": after, "limit": limit})
        return [(r["id"], r["text"]) for r in rows]

    def set_vectors(self, model: str, vectors: Sequence[tuple[int, bytes]]) -> None:
        self._lock()
        self.conn.run(self.q.bump_generation)
        self._model_read = False
        self.conn.run_many(self.q.set_chunk_vector, [
            {"id": chunk_id, "model": model, "embedding": blob} for chunk_id, blob in vectors])
        indexing = self._indexing(model)
        if indexing is not None and vectors:
            namespaces = {c.id: c.namespace for c in self.chunks([i for i, _ in vectors])}
            indexing.add(self.conn, [(i, namespaces[i], blob) for i, blob in vectors])

    def counts(self, model: str) -> tuple[int, int]:
        row = self.conn.fetch(self.q.chunk_counts, {"model": model})[0]
        return int(row["chunks"]), int(row["embedded"])

    @property
    def index_name(self) -> str | None:
        return None if self.index is None else self.index.name

    def nearest(self, vector: bytes, namespace_pattern: str,
                k: int) -> builtins.list[int] | None:
        complete = self._complete_index()
        if complete is None:
            return None
        return complete[0].nearest(self.conn, vector, namespace_pattern, k)

    def reindex(self) -> int:
        current = self.embedding_model()
        if self.index is None or current is None:
            return 0
        self.index.reset(self.conn, current.dim)
        total, after = 0, 0
        while batch := self.vectors(current.model, after, self.REINDEX_BATCH):
            self.index.add(self.conn, batch)
            total += len(batch)
            after = batch[-1][0]
        self.conn.run(self.q.set_model_indexed, {"indexed": 1})
        self._model = EmbeddingModel(current.model, current.dim, True)
        return total
