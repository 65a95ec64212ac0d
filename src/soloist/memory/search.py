"""One search over memory: documents (hybrid) and facts (by their words), fused.

What the ``memory.search`` tool and ``soloist memory search`` return. Documents come
ranked by ``Documents.search`` (keyword, thread context and vectors); facts by the store's
full-text score over "subject key value", each as its version current now (or at
``as_of``). The two rankings are fused by reciprocal rank, so a fact that names the
query's words sits beside the passages that do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from soloist.memory.documents import Documents
from soloist.memory.facts import Memory
from soloist.memory.text import rrf_fuse
from soloist.store.base import ChunkRow, FactRow
from soloist.store.seam import dumps


@dataclass(frozen=True)
class MemoryHit:
    kind: Literal["document", "fact"]
    namespace: str
    key: str  # a document's key, or a fact's "subject/key"
    text: str
    score: float
    chunk: ChunkRow | None = None
    fact: FactRow | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "namespace": self.namespace,
                               "key": self.key, "text": self.text,
                               "score": round(self.score, 6)}
        if self.fact is not None:
            out.update(value=self.fact.value, version=self.fact.version, by=self.fact.actor)
        return out


def search_memory(memory: Memory, documents: Documents, query: str, namespace: str = "*",
                  k: int = 10, *, subject: str | None = None, since: float | None = None,
                  until: float | None = None, recency_days: float | None = None,
                  as_of: float | None = None) -> list[MemoryHit]:
    """The ``k`` best documents and facts for ``query`` in the namespaces of the glob.

    ``subject`` keeps facts of that subject and documents whose metadata names it;
    ``since``/``until`` bound when a document or fact version was written; ``as_of``
    reads facts as they were then; ``recency_days`` favours recent documents.
    """
    found = [MemoryHit("document", h.chunk.namespace, h.chunk.doc_key, h.chunk.text,
                       h.score, chunk=h.chunk)
             for h in documents.search(query, namespace, k, subject=subject, since=since,
                                       until=until, recency_days=recency_days)]
    documents_found = len(found)
    for f in memory.search(query, namespace, k, subject=subject, as_of=as_of):
        if (since is not None and f.recorded_at < since) or (
                until is not None and f.recorded_at >= until):
            continue
        value = f.value if isinstance(f.value, str) else dumps(f.value)
        found.append(MemoryHit("fact", f.namespace, f"{f.subject}/{f.key}",
                               f"{f.subject} {f.key}: {value}", 0.0, fact=f))
    # Each list best first; fused by position in ``found``.
    fused = rrf_fuse([range(documents_found), range(documents_found, len(found))])
    return [replace(found[i], score=score) for i, score in fused[:k]]
