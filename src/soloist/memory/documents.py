"""Documents and hybrid retrieval over the store.

A document is versioned text with metadata (namespace, source, author, time), split into
chunks. Search fuses rankings by reciprocal rank: keyword (SQLite FTS5 with BM25, or
PostgreSQL full text) and vectors (the store's own index, pgvector, or else an exact
search in memory, so retrieval never silently degrades to keyword only when an embedder
is configured). A document in a thread is also found by the words of its neighbours; a
turn of a conversation (thread and speaker in its metadata) gets the conversation priors
of ``memory/ranking.py``, no other document does.

Memory's vectors come from one model at a time, recorded in the store. When the
configured embedder is another model, writes and searches refuse with a clear error
until ``soloist memory reembed`` (``Documents.reembed``) has made every current chunk's
vector anew: vectors of two models are never compared.
"""

from __future__ import annotations

import re
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from soloist.errors import ConfigError, InputError, InvalidState, NotFound
from soloist.memory.facts import Cause
from soloist.memory.ranking import (
    RECIPE,
    RECIPE_WITHOUT_WINDOWS,
    Candidate,
    Recipe,
    rank,
    recency_boost,
    vector_query,
    window_text,
)
from soloist.memory.text import query_words
from soloist.store.base import (
    ChunkFilter,
    ChunkRow,
    DocumentRow,
    NewDocument,
    Store,
    Transaction,
)
from soloist.store.seam import glob_to_like

if TYPE_CHECKING:
    from soloist.memory.embeddings import Embedder
    from soloist.memory.vectors import VectorCache

MAX_CHUNK_CHARS = 1200
CANDIDATES = 50
CONTEXT_TURNS = 2
"""A thread document's context chunk holds this many neighbours on each side."""


def chunk_text(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Paragraphs, packed up to ``limit`` characters; a longer paragraph is cut."""
    chunks: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        while len(paragraph) > limit:
            chunks.append(paragraph[:limit])
            paragraph = paragraph[limit:]
        if current and len(current) + 2 + len(paragraph) > limit:
            chunks.append(current)
            current = paragraph
        else:
            current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks


def pack(vector: Sequence[float]) -> bytes:
    return array("f", vector).tobytes()


def thread_of(namespace: str, key: str, metadata: dict[str, Any]) -> tuple[str, int] | None:
    """(thread, position) from a document's metadata, or None when it is in no thread."""
    thread = metadata.get("thread")
    if thread is None:
        return None
    position = metadata.get("position")
    if not isinstance(position, int) or isinstance(position, bool):
        raise InputError(f"document {namespace}/{key} names thread {thread!r} but its "
                         f"metadata has no integer 'position' (its place in the thread)")
    return str(thread), position


def candidate(chunk: ChunkRow) -> Candidate:
    """What the ranking knows of a chunk of a conversation: its thread, place there, speaker.

    Only a turn of a conversation, a document with both a thread and a speaker in its
    metadata, gets the conversation priors; any other document (a brief, a note, a mail,
    whoever its author) is a plain candidate, so a name in the query changes nothing for it.
    """
    meta = chunk.metadata if isinstance(chunk.metadata, dict) else {}
    thread, position, speaker = meta.get("thread"), meta.get("position"), meta.get("speaker")
    if thread is None or not isinstance(speaker, str) or not speaker:
        return Candidate()
    return Candidate(
        group=(chunk.namespace, str(thread)),
        position=position if isinstance(position, int) and chunk.seq == 0 else None,
        speaker=speaker)


def _by_kind(turns: Sequence[int], others: Sequence[int], known: dict[int, ChunkRow]
             ) -> list[int]:
    """One vector ranking from two: the conversation turns as ranked in ``turns``, every
    other chunk as ranked in ``others``, merged by place (a turn first on a tie).

    Both rankings are over the same chunks, so a place in one is worth one in the other.
    Chunks not in ``known`` (retired since the vectors were read) drop out.
    """
    place: dict[int, int] = {}
    for ranking, wanted in ((turns, True), (others, False)):
        for index, chunk_id in enumerate(ranking):
            chunk = known.get(chunk_id)
            if chunk is not None and (candidate(chunk).speaker is not None) is wanted:
                place.setdefault(chunk_id, index)
    return sorted(place, key=place.__getitem__)


@dataclass(frozen=True)
class DocumentWrite:
    """A write's version, and whether it was one made earlier for the same idempotency key
    (a retried dispatch replays it instead of writing again)."""

    row: DocumentRow
    replayed: bool = False


@dataclass(frozen=True)
class StagedDocuments:
    """Documents chunked and embedded, not written yet (:meth:`Documents.stage`)."""

    chunked: list[tuple[str, str, str, dict[str, Any], list[str]]]
    threads: list[tuple[str, int] | None]
    vectors: list[list[float]] | None
    model: str | None


@dataclass(frozen=True)
class SearchHit:
    chunk: ChunkRow
    score: float
    keyword_rank: int | None
    vector_rank: int | None


class Documents:
    REEMBED_BATCH = 256

    def __init__(self, store: Store, embedder: Embedder | None = None, *,
                 recipes: tuple[Recipe, Recipe] = (RECIPE, RECIPE_WITHOUT_WINDOWS)) -> None:
        self.store = store
        self.embedder = embedder
        # (with thread context chunks, without): see memory/ranking.py
        self.recipes = recipes
        self._cache: VectorCache | None = None
        self._lock = threading.Lock()

    def _same_model(self, tx: Transaction, dim: int | None = None) -> None:
        """Refuse to mix models; record the embedder's model on the first embedded write."""
        assert self.embedder is not None
        current = tx.documents.embedding_model()
        if current is None:
            if dim is not None:
                tx.documents.use_model(self.embedder.name, dim)
            return
        if current.model != self.embedder.name:
            raise InvalidState(
                f"memory's vectors come from {current.model!r} but the configured embedder "
                f"is {self.embedder.name!r}; run `soloist memory reembed` to make them "
                f"anew with {self.embedder.name!r} (or configure {current.model!r} again)")

    def _vectors(self) -> VectorCache:
        from soloist.memory.vectors import VectorCache  # numpy, only once vectors are read

        assert self.embedder is not None
        with self._lock:
            if self._cache is None or self._cache.model != self.embedder.name:
                self._cache = VectorCache(self.embedder.name)
            cache = self._cache
        cache.refresh(self.store)
        return cache

    def add(self, namespace: str, key: str, text: str, cause: Cause,
            metadata: dict[str, Any] | None = None) -> int:
        """Store ``text`` as the next version of document ``key``; returns the version."""
        if not text.strip():
            raise InputError(f"document {namespace}/{key} is empty")
        return self._write([(namespace, key, text, metadata or {})], cause)[0]

    def add_many(self, items: Sequence[tuple[str, str, str, dict[str, Any]]],
                 cause: Cause) -> int:
        """Many small documents in one transaction, embedded in batches (ingestion)."""
        return len(self._write(items, cause))

    def _write(self, items: Sequence[tuple[str, str, str, dict[str, Any]]],
               cause: Cause) -> list[int]:
        staged = self.stage(items)
        with self.store.transaction() as tx:
            return self.write_staged(tx, staged, cause)

    def stage(self, items: Sequence[tuple[str, str, str, dict[str, Any]]]) -> StagedDocuments:
        """Chunk and embed ``items`` (namespace, key, text, metadata) before any transaction,
        for :meth:`write_staged` to write in one (a deploy's, say)."""
        threads = [thread_of(ns, key, meta) for ns, key, _, meta in items]
        chunked = [(ns, key, text, meta, chunk_text(text)) for ns, key, text, meta in items]
        flat = [c for *_, chunks in chunked for c in chunks]
        vectors = self.embedder.embed(flat) if self.embedder is not None and flat else None
        model = self.embedder.name if self.embedder is not None else None
        return StagedDocuments(chunked, threads, vectors, model)

    def write_staged(self, tx: Transaction, staged: StagedDocuments, cause: Cause
                     ) -> list[int]:
        """Write what :meth:`stage` made inside the caller's transaction; the versions."""
        chunked, threads, vectors, model = (staged.chunked, staged.threads, staged.vectors,
                                            staged.model)
        now = time.time()
        position = 0
        versions = []
        touched: dict[tuple[str, str], set[int]] = {}
        if vectors:
            self._same_model(tx, len(vectors[0]))
        for (ns, key, text, meta, chunks), place in zip(chunked, threads, strict=True):
            blobs = None
            if vectors is not None:
                blobs = [pack(v) for v in vectors[position:position + len(chunks)]]
            position += len(chunks)
            thread, order = place or (None, None)
            versions.append(tx.documents.add(NewDocument(
                ns, key, text, meta, chunks, blobs, model,
                cause.actor, cause.reason, cause.run_id, cause.step_id, now,
                thread, order)))
            if thread is not None and order is not None:
                touched.setdefault((ns, thread), set()).add(order)
        for (ns, thread), positions in touched.items():
            self._contexts(tx, ns, thread, positions)
        return versions

    @staticmethod
    def _contexts(tx: Transaction, namespace: str, thread: str, positions: set[int]) -> None:
        """Remake the context chunks that the documents at ``positions`` appear in."""
        w = CONTEXT_TURNS
        rows = tx.documents.thread(namespace, thread, min(positions), max(positions), 2 * w)
        changed = [i for i, row in enumerate(rows) if row.position in positions]
        affected = sorted({j for i in changed for j in range(i - w, i + w + 1)
                           if 0 <= j < len(rows)})
        texts = [row.text for row in rows]
        for j in affected:
            tx.documents.set_context(rows[j], namespace, thread, window_text(texts, j, w, w))

    def search(self, query: str, namespace: str = "*", k: int = 10, *,
               subject: str | None = None, since: float | None = None,
               until: float | None = None, recency_days: float | None = None
               ) -> list[SearchHit]:
        """The ``k`` best current chunks for ``query`` among namespaces matching the glob.

        ``subject``, ``since`` and ``until`` filter (the metadata's subject; when the
        version was written); ``recency_days`` favours newer chunks: a chunk that many days
        old counts half as much extra as one written now.
        """
        pattern = glob_to_like(namespace)
        where = ChunkFilter(subject, since, until)
        # Filters apply inside the keyword query but after the vector one: look deeper.
        depth = CANDIDATES * (4 if where else 1)
        tokens = query_words(query)
        with self.store.read() as tx:
            keyword = tx.documents.keyword(tokens, pattern, CANDIDATES, where)
            context_ids = tx.documents.keyword_context(tokens, pattern, CANDIDATES, where)
            if self.embedder is not None:
                self._same_model(tx)
        known = {c.id: c for c in keyword}
        vector_ids: list[int] = []
        if self.embedder is not None:
            vector_ids = self._vector_ranking(query, known, pattern, namespace, depth)
        if where:
            self._load(known, vector_ids)
            vector_ids = [i for i in vector_ids if i in known and where.admits(known[i])]
        vector_ids = vector_ids[:CANDIDATES]
        keyword_ids = [c.id for c in keyword]
        self._load(known, [*context_ids, *vector_ids])
        # Only current chunks load: one retired since the vectors were read drops out here.
        vector_ids = [i for i in vector_ids if i in known]
        candidates = {i: candidate(c) for i, c in known.items()}
        fused = rank(keyword_ids, vector_ids, candidates, query, window=context_ids,
                     recipe=self.recipes[0] if context_ids else self.recipes[1])
        if recency_days is not None:
            fused = recency_boost(fused, {i: known[i].created_at for i, _ in fused},
                                  recency_days * 86400.0, now=time.time())
        chosen = [chunk_id for chunk_id, _ in fused[:k]]
        scores = dict(fused)
        keyword_rank = {i: place for place, i in enumerate(keyword_ids, start=1)}
        vector_rank = {i: place for place, i in enumerate(vector_ids, start=1)}
        return [SearchHit(known[i], scores[i], keyword_rank.get(i), vector_rank.get(i))
                for i in chosen if i in known]

    def _vector_ranking(self, query: str, known: dict[int, ChunkRow], pattern: str,
                        namespace: str, depth: int) -> list[int]:
        """Chunk ids by their vectors' nearness to ``query``; ``known`` holds the keyword
        candidates and gains the chunks read here.

        Names say who, not what: turns of a conversation are looked for by the rest of the
        query (the keyword side keeps the names), every other document by the query as it
        is. That second search runs only when the candidates so far hold a document that is
        not a turn: a conversation alone costs one search.
        """
        names = {who for c in known.values() if (who := candidate(c).speaker)}
        turn_query = vector_query(query, names) if names else query
        found = self._nearest(turn_query, pattern, namespace, depth)
        if turn_query == query:
            return found
        self._load(known, found)
        if all(candidate(c).speaker is not None for c in known.values()):
            return found
        others = self._nearest(query, pattern, namespace, depth)
        self._load(known, others)
        return _by_kind(found, others, known)

    def _nearest(self, text: str, pattern: str, namespace: str, depth: int) -> list[int]:
        """Current chunk ids nearest the query vector of ``text``, best first."""
        from soloist.memory.embeddings import embed_queries

        assert self.embedder is not None
        vector = embed_queries(self.embedder, [text])[0]
        with self.store.read() as tx:
            self._same_model(tx)
            if tx.documents.embedding_model() is None:
                return []
            ids = tx.documents.nearest(pack(vector), pattern, depth)
        if ids is None:  # no store-side index: exact, in memory
            ids = self._vectors().nearest(vector, namespace, depth)
        return ids

    # -- versions -----------------------------------------------------------------------
    def history(self, namespace: str, key: str) -> list[DocumentRow]:
        """Every version of document ``key``, oldest first, each with who wrote it and why."""
        with self.store.read() as tx:
            rows = tx.documents.history(namespace, key)
        if not rows:
            raise NotFound(f"there is no document {namespace}/{key}")
        return rows

    def get(self, namespace: str, key: str, *, version: int | None = None,
            as_of: float | None = None) -> DocumentRow:
        """The newest version, version ``version``, or the one that was newest at ``as_of``."""
        rows = self.history(namespace, key)
        if version is not None:
            found = next((r for r in rows if r.version == version), None)
            if found is None:
                raise NotFound(f"document {namespace}/{key} has versions 1 to "
                               f"{rows[-1].version}, not {version}")
            return found
        if as_of is not None:
            known = [r for r in rows if r.created_at <= as_of]
            if not known:
                raise NotFound(f"document {namespace}/{key} did not exist yet then (its "
                               "first version came later)")
            return known[-1]
        return rows[-1]

    def latest(self, namespace: str = "*", limit: int = 1_000_000) -> list[DocumentRow]:
        """The newest version of every document in the namespaces matching a glob."""
        with self.store.read() as tx:
            return tx.documents.latest(glob_to_like(namespace), limit)

    def _load(self, known: dict[int, ChunkRow], ids: Sequence[int]) -> None:
        missing = [i for i in ids if i not in known]
        if missing:
            with self.store.read() as tx:
                known.update({c.id: c for c in tx.documents.chunks(missing)})

    def reembed(self, progress: Callable[[int], None] | None = None) -> int:
        """Make every current chunk's vector with the configured embedder; how many.

        Batches commit one by one, so a stopped re-embed resumes where it was. Searches in
        the meantime see the chunks already done.
        """
        if self.embedder is None:
            raise ConfigError("no embedder is configured: install the local model "
                              "(soloist[embeddings]) or set [memory.embeddings] in "
                              "soloist.toml")
        name = self.embedder.name
        done, after = 0, 0
        while True:
            with self.store.read() as tx:
                stale = tx.documents.stale(name, after, self.REEMBED_BATCH)
            if not stale:
                break
            vectors = self.embedder.embed([text for _, text in stale])
            with self.store.transaction() as tx:
                current = tx.documents.embedding_model()
                if current is None or current.model != name:
                    tx.documents.use_model(name, len(vectors[0]))
                tx.documents.set_vectors(name, [(chunk_id, pack(v)) for (chunk_id, _), v
                                                in zip(stale, vectors, strict=True)])
            done += len(stale)
            after = stale[-1][0]
            if progress is not None:
                progress(done)
        return done

    def status(self) -> dict[str, Any]:
        """What vectors memory holds, from which model, searched by what."""
        configured = self.embedder.name if self.embedder is not None else None
        with self.store.read() as tx:
            current = tx.documents.embedding_model()
            model = current.model if current is not None else configured
            chunks, embedded = tx.documents.counts(model or "")
            index = tx.documents.index_name
        return {
            "embedder": configured,
            "model": current.model if current is not None else None,
            "dimensions": current.dim if current is not None else None,
            "chunks": chunks,
            "embedded": embedded,
            "search": (index if index and current is not None and current.indexed
                       else "exact, in memory"),
            "reembed_needed": configured is not None and (
                model != configured or embedded < chunks),
            "ranking": self._ranking(),
        }

    def _ranking(self) -> str:
        """The recipe's weights that ``[memory.search]`` changed, or "default"."""
        changed = [f"{f.name}={getattr(self.recipes[0], f.name)}" for f in fields(Recipe)
                   if getattr(self.recipes[0], f.name) != getattr(RECIPE, f.name)]
        return ", ".join(changed) or "default"
