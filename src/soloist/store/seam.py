"""The seam between the shared repositories and a backend: a connection that runs named
queries with dict parameters, and the JSON encoding every backend stores as text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

Row = dict[str, Any]


class Connection(Protocol):
    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]: ...
    def run(self, sql: str, params: dict[str, Any] | None = None) -> int: ...
    def run_many(self, sql: str, params: Sequence[dict[str, Any]]) -> None: ...


# One encoder: json.dumps with options builds a new one on every call, on the hot path.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def like_literal(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally (with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def glob_to_like(glob: str) -> str:
    """A namespace glob (``leads/*``) as an SQL LIKE pattern (with ``ESCAPE '\\'``)."""
    return like_literal(glob).replace("*", "%")


class VectorOps(Protocol):
    """A backend's own nearest-neighbour index over the current chunks (pgvector).

    Made empty for one dimension by ``reset``; the shared documents repository keeps it in
    step with the chunks it writes, in the same transaction.
    """

    name: str

    def reset(self, conn: Connection, dim: int) -> None: ...
    def add(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Index (chunk id, namespace, float32 vector) rows."""
        ...
    def retire(self, conn: Connection, namespace: str, doc_key: str) -> None:
        """Drop the document's current chunks (called before they are retired)."""
        ...
    def nearest(self, conn: Connection, vector: bytes, namespace_pattern: str,
                k: int) -> list[int]:
        """Chunk ids, nearest first, among namespaces matching the LIKE pattern."""
        ...
