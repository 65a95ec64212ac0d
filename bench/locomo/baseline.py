"""The benchmark's baseline: an in-memory retriever (BM25, exact vectors, RRF), no store.

Nothing here touches a store, and the product does not use it: it is what Soloist's
``Documents.search`` is compared against (plain BM25 over the same turns), with its own
tokenizer and light stemmer. Fusion is the product's own ``rrf_fuse`` and recency boost.

Every ranking is deterministic: ties are broken by the order documents were added.
numpy is used for vector search when it can be imported at call time, otherwise pure Python.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from locomo.data import Conversation, Search, Turn, turn_text
from soloist.memory.ranking import recency_boost
from soloist.memory.text import STOPWORDS, rrf_fuse

__all__ = [
    "BM25Index",
    "Embedder",
    "Hit",
    "HybridRetriever",
    "Recency",
    "VectorIndex",
    "retriever_search",
    "stem",
    "tokenize",
]

Embedder = Callable[[Sequence[str]], list[list[float]]]
"""Turns a batch of texts into a batch of vectors (one per text, all of one dimension)."""

IdFilter = Callable[[str], bool]
Id = TypeVar("Id", bound=Hashable)

_WORD = re.compile(r"\w+", re.UNICODE)
_VOWEL = re.compile(r"[aeiouy]")


def stem(word: str) -> str:
    """A light, deterministic suffix stripper; not Porter, just enough to conflate forms.

    In order: plurals (-ies, -sses, -xes/-zes/-ches/-shes, -s), then -ing/-ed (only when a
    stem of three or more letters with a vowel is left; a doubled final consonant is undoubled,
    "running" -> "run"), then -ly, then a final silent -e ("liked", "likes", "like" -> "lik").
    Non-alphabetic tokens (numbers, ids) are left alone.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith(("xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            base = word[: -len(suffix)]
            if len(base) >= 3 and _VOWEL.search(base):
                if len(base) >= 4 and base[-1] == base[-2] and base[-1] not in "aeiouylsz":
                    base = base[:-1]
                word = base
            break
    if word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lowercase unicode word tokens, stopwords removed, lightly stemmed; order kept."""
    out: list[str] = []
    for raw in _WORD.findall(text.lower()):
        token = raw.strip("_")
        if not token or token in STOPWORDS:
            continue
        out.append(stem(token))
    return out


def _top(scored: Iterable[tuple[Id, float]], order: Mapping[Id, int], k: int
         ) -> list[tuple[Id, float]]:
    """Best first; ties by insertion order."""
    ranked = sorted(scored, key=lambda item: (-item[1], order.get(item[0], 0)))
    return ranked[: max(k, 0)]


class BM25Index:
    """Okapi BM25 over an in-memory inverted index (Lucene's non-negative idf)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75,
                 tokenizer: Callable[[str], list[str]] = tokenize) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise ValueError("BM25 needs k1 >= 0 and 0 <= b <= 1")
        self.k1 = k1
        self.b = b
        self._tokenize = tokenizer
        self._postings: dict[str, dict[str, int]] = {}
        self._lengths: dict[str, int] = {}
        self._terms: dict[str, list[str]] = {}
        self._order: dict[str, int] = {}
        self._total_length = 0
        self._seq = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._lengths

    def add(self, doc_id: str, text: str) -> None:
        """Index a document; adding an existing id replaces it."""
        if doc_id in self._lengths:
            self.remove(doc_id)
        tokens = self._tokenize(text)
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[doc_id] = tf
        self._terms[doc_id] = list(counts)
        self._lengths[doc_id] = len(tokens)
        self._total_length += len(tokens)
        self._order[doc_id] = self._seq
        self._seq += 1

    def remove(self, doc_id: str) -> bool:
        if doc_id not in self._lengths:
            return False
        for term in self._terms.pop(doc_id):
            posting = self._postings[term]
            del posting[doc_id]
            if not posting:
                del self._postings[term]
        self._total_length -= self._lengths.pop(doc_id)
        del self._order[doc_id]
        return True

    def idf(self, term: str) -> float:
        n = len(self._lengths)
        df = len(self._postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: str, filter: IdFilter | None = None) -> dict[str, float]:
        """BM25 score of every matching document (those sharing at least one query term)."""
        n = len(self._lengths)
        if n == 0:
            return {}
        avgdl = self._total_length / n or 1.0
        query_terms: dict[str, int] = {}
        for term in self._tokenize(query):
            query_terms[term] = query_terms.get(term, 0) + 1
        out: dict[str, float] = {}
        allowed: dict[str, bool] = {}
        for term, qtf in query_terms.items():
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = self.idf(term)
            for doc_id, tf in posting.items():
                if filter is not None:
                    ok = allowed.get(doc_id)
                    if ok is None:
                        ok = allowed[doc_id] = bool(filter(doc_id))
                    if not ok:
                        continue
                norm = 1.0 - self.b + self.b * self._lengths[doc_id] / avgdl
                out[doc_id] = out.get(doc_id, 0.0) + qtf * idf * tf * (self.k1 + 1.0) / (
                    tf + self.k1 * norm)
        return out

    def search(self, query: str, k: int = 10, filter: IdFilter | None = None
               ) -> list[tuple[str, float]]:
        """The top k (doc_id, score), best first; documents sharing no term are left out."""
        return _top(self.scores(query, filter).items(), self._order, k)


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _normalise(vector: Sequence[float]) -> list[float]:
    values = [float(x) for x in vector]
    norm = math.sqrt(sum(x * x for x in values))
    if norm == 0.0 or not math.isfinite(norm):
        return [0.0] * len(values)
    return [x / norm for x in values]


class VectorIndex:
    """Exact (brute-force) cosine similarity over normalised vectors."""

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self._ids: list[str] = []
        self._vectors: list[list[float]] = []
        self._pos: dict[str, int] = {}
        self._matrix: Any = None  # numpy cache, rebuilt after changes

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._pos

    def add(self, doc_id: str, vector: Sequence[float]) -> None:
        """Store the normalised vector; adding an existing id replaces it."""
        if self.dim is None:
            self.dim = len(vector)
        if len(vector) != self.dim or self.dim == 0:
            raise ValueError(f"vector for {doc_id!r} has dimension {len(vector)}, "
                             f"the index has {self.dim}")
        unit = _normalise(vector)
        if doc_id in self._pos:
            self._vectors[self._pos[doc_id]] = unit
        else:
            self._pos[doc_id] = len(self._ids)
            self._ids.append(doc_id)
            self._vectors.append(unit)
        self._matrix = None

    def remove(self, doc_id: str) -> bool:
        index = self._pos.pop(doc_id, None)
        if index is None:
            return False
        del self._ids[index]
        del self._vectors[index]
        self._pos = {d: i for i, d in enumerate(self._ids)}
        self._matrix = None
        return True

    def search(self, query_vector: Sequence[float], k: int = 10,
               filter: IdFilter | None = None) -> list[tuple[str, float]]:
        """The top k (doc_id, cosine similarity), best first, ties by insertion order."""
        if not self._ids or k <= 0:
            return []
        if len(query_vector) != self.dim:
            raise ValueError(f"query has dimension {len(query_vector)}, the index has {self.dim}")
        query = _normalise(query_vector)
        np = _numpy()
        if np is not None:
            if self._matrix is None:
                self._matrix = np.asarray(self._vectors, dtype=np.float64)
            sims = [float(x) for x in self._matrix @ np.asarray(query, dtype=np.float64)]
        else:
            sims = [sum(a * b for a, b in zip(vec, query, strict=True)) for vec in self._vectors]
        scored = ((doc_id, sim) for doc_id, sim in zip(self._ids, sims, strict=True)
                  if filter is None or filter(doc_id))
        return _top(scored, self._pos, k)


@dataclass(frozen=True)
class Recency:
    """Recency option for HybridRetriever.search: boost by the metadata timestamp `key`."""

    half_life_seconds: float
    weight: float = 1.0
    now: float | None = None
    key: str = "ts"


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    keyword_rank: int | None
    vector_rank: int | None
    mode: Literal["hybrid", "keyword"] = "hybrid"


MetadataFilter = Callable[[str, Mapping[str, Any]], bool]


def _timestamp(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


@dataclass
class _Doc:
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


class HybridRetriever:
    """BM25 + exact vectors fused by reciprocal rank; keyword-only when there is no embedder.

    Embedding is lazy and batched: added texts are embedded together at the next search.
    `filter` sees (id, metadata); `recency` (a Recency or a half-life in seconds) boosts by the
    metadata timestamp (epoch seconds, datetime, or ISO string under Recency.key).
    """

    def __init__(self, embed: Embedder | None = None, *, k1: float = 1.2, b: float = 0.75,
                 rrf_k: int = 60, keyword_weight: float = 1.0, vector_weight: float = 1.0,
                 candidates: int = 100) -> None:
        self.embed = embed
        self.rrf_k = rrf_k
        self.keyword_weight = keyword_weight
        self.vector_weight = vector_weight
        self.candidates = candidates
        self.keyword = BM25Index(k1=k1, b=b)
        self.vectors = VectorIndex()
        self._docs: dict[str, _Doc] = {}
        self._pending: dict[str, str] = {}

    @property
    def mode(self) -> Literal["hybrid", "keyword"]:
        return "keyword" if self.embed is None else "hybrid"

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, id: str, text: str, metadata: Mapping[str, Any] | None = None) -> None:
        self._docs[id] = _Doc(text, dict(metadata or {}))
        self.keyword.add(id, text)
        if self.embed is not None:
            self._pending[id] = text

    def remove(self, id: str) -> bool:
        if self._docs.pop(id, None) is None:
            return False
        self.keyword.remove(id)
        self.vectors.remove(id)
        self._pending.pop(id, None)
        return True

    def metadata(self, id: str) -> Mapping[str, Any]:
        return self._docs[id].metadata

    def text(self, id: str) -> str:
        return self._docs[id].text

    def _flush(self) -> None:
        if self.embed is None or not self._pending:
            return
        ids = list(self._pending)
        vectors = self.embed([self._pending[i] for i in ids])
        if len(vectors) != len(ids):
            raise ValueError(f"embedder returned {len(vectors)} vectors for {len(ids)} texts")
        for doc_id, vector in zip(ids, vectors, strict=True):
            self.vectors.add(doc_id, vector)
        self._pending.clear()

    def search(self, query: str, k: int = 10, filter: MetadataFilter | None = None,
               recency: Recency | float | None = None) -> list[Hit]:
        if k <= 0:
            return []
        id_filter: IdFilter | None = None
        if filter is not None:
            user_filter = filter

            def id_filter(doc_id: str) -> bool:
                return user_filter(doc_id, self._docs[doc_id].metadata)

        depth = max(self.candidates, k)
        keyword_ranking = [d for d, _ in self.keyword.search(query, depth, id_filter)]
        rankings: list[list[str]] = [keyword_ranking]
        weights = [self.keyword_weight]
        vector_ranking: list[str] = []
        if self.embed is not None:
            self._flush()
            if len(self.vectors):
                query_vector = self.embed([query])[0]
                vector_ranking = [d for d, _ in self.vectors.search(query_vector, depth,
                                                                    id_filter)]
            rankings.append(vector_ranking)
            weights.append(self.vector_weight)
        fused = rrf_fuse(rankings, k=self.rrf_k, weights=weights)
        if recency is not None:
            option = recency if isinstance(recency, Recency) else Recency(float(recency))
            stamps: dict[str, float] = {}
            for doc_id, _ in fused:
                ts = _timestamp(self._docs[doc_id].metadata.get(option.key))
                if ts is not None:
                    stamps[doc_id] = ts
            fused = recency_boost(fused, stamps, option.half_life_seconds,
                                  weight=option.weight, now=option.now)
        keyword_rank = {d: i for i, d in enumerate(keyword_ranking, start=1)}
        vector_rank = {d: i for i, d in enumerate(vector_ranking, start=1)}
        return [Hit(doc_id, score, keyword_rank.get(doc_id), vector_rank.get(doc_id), self.mode)
                for doc_id, score in fused[:k]]


def retriever_search(conversations: Iterable[Conversation],
                     factory: Callable[[], HybridRetriever] = HybridRetriever,
                     text: Callable[[Turn], str] = turn_text) -> Search:
    """Index each conversation's turns in its own retriever; return a Search over them.

    The default factory has no embedder, so this is the plain BM25 baseline.
    """
    retrievers: dict[str, HybridRetriever] = {}
    for conv in conversations:
        retriever = factory()
        for turn in conv.turns:
            retriever.add(turn.dia_id, text(turn),
                          {"speaker": turn.speaker, "session": turn.session,
                           "session_date": turn.session_date})
        retrievers[conv.sample_id] = retriever

    def search(conv_id: str, question: str, k: int) -> list[str]:
        return [hit.id for hit in retrievers[conv_id].search(question, k)]

    return search
