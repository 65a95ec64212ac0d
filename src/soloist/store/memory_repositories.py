"""The memory plane's aggregates (facts, documents) over the same named-query seam."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from soloist.store.base import ChunkRow, FactRow, NewDocument
from soloist.store.seam import Connection, Row, dumps, loads


def _fact(row: Row) -> FactRow:
    return FactRow(
        namespace=row["namespace"], subject=row["subject"], key=row["key"],
        version=row["version"], op=row["op"], value=loads(row["value"]), actor=row["actor"],
        reason=row["reason"], run_id=row["run_id"], step_id=row["step_id"],
        reverts=row["reverts"], valid_from=row["valid_from"], valid_to=row["valid_to"],
        expires_at=row["expires_at"], recorded_at=row["recorded_at"],
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


def _chunk(row: Row) -> ChunkRow:
    return ChunkRow(row["id"], row["namespace"], row["doc_key"], row["seq"], row["text"],
                    loads(row["metadata"]), row["created_at"], float(row.get("score") or 0.0))


class SqlDocuments:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def add(self, doc: NewDocument) -> int:
        ident = {"namespace": doc.namespace, "doc_key": doc.doc_key}
        version = int(self.conn.fetch(self.q.doc_last_version, ident)[0]["v"]) + 1
        metadata = dumps(doc.metadata)
        doc_id = self.conn.fetch(self.q.insert_document, {
            **ident, "version": version, "metadata": metadata, "text": doc.text,
            "actor": doc.actor, "reason": doc.reason, "run_id": doc.run_id,
            "step_id": doc.step_id, "created_at": doc.created_at})[0]["id"]
        self.conn.run(self.q.retire_chunks, ident)
        self.conn.run_many(self.q.insert_chunk, [
            {"document_id": doc_id, **ident, "seq": seq, "text": text, "metadata": metadata,
             "created_at": doc.created_at, "model": doc.model,
             "embedding": doc.embeddings[seq] if doc.embeddings else None}
            for seq, text in enumerate(doc.chunks)
        ])
        return version

    def keyword(self, tokens: builtins.list[str], namespace_pattern: str,
                k: int) -> builtins.list[ChunkRow]:
        if not tokens:
            return []
        params = {"query": self.q.fts_query(tokens), "pattern": namespace_pattern, "k": k}
        return [_chunk(r) for r in self.conn.fetch(self.q.keyword_chunks, params)]

    def vectors(self, namespace_pattern: str, model: str,
                after: int = 0) -> builtins.list[tuple[int, bytes, bool]]:
        rows = self.conn.fetch(self.q.vector_chunks,
                               {"pattern": namespace_pattern, "model": model, "after": after})
        return [(r["id"], bytes(r["embedding"]), bool(r["current"]))
                for r in rows if r["embedding"] is not None]

    def retired(self, namespace_pattern: str, upto: int) -> builtins.list[int]:
        rows = self.conn.fetch(self.q.retired_chunks,
                               {"pattern": namespace_pattern, "upto": upto})
        return [r["id"] for r in rows]

    def chunks(self, ids: Sequence[int]) -> builtins.list[ChunkRow]:
        if not ids:
            return []
        rows = self.conn.fetch(self.q.chunks_by_ids, {"ids": dumps(builtins.list(ids))})
        return [_chunk(r) for r in rows]
