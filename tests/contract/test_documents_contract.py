"""Documents, through the store's transactions, the same on every backend: versions and
their chunks, keyword search, threads and their context chunks, and the vectors of one
embedding model (the store's own index where it has one, else none)."""

from __future__ import annotations

from array import array

import pytest

from soloist.store.base import ChunkFilter, EmbeddingModel, NewDocument, Store
from soloist.testing import HashingEmbedder

NOW = 1_000_000.0
EMBEDDER = HashingEmbedder(8)
MODEL = EMBEDDER.name


def blob(text: str) -> bytes:
    return array("f", EMBEDDER.embed([text])[0]).tobytes()


def document(key: str, *chunks: str, namespace: str = "notes", metadata: object = None,
             at: float = NOW, embedded: bool = False, thread: str | None = None,
             position: int | None = None, run_id: str | None = None) -> NewDocument:
    return NewDocument(
        namespace=namespace, doc_key=key, text="\n\n".join(chunks),
        metadata=metadata if metadata is not None else {"author": "ada"},
        chunks=list(chunks), embeddings=[blob(c) for c in chunks] if embedded else None,
        model=MODEL if embedded else None, actor="person:ada", reason="imported",
        run_id=run_id, step_id=None if run_id is None else "write", created_at=at,
        thread=thread, position=position)


def add(store: Store, *docs: NewDocument) -> list[int]:
    with store.transaction() as tx:
        return [tx.documents.add(doc) for doc in docs]


def ids_of(store: Store, tokens: list[str], pattern: str = "%") -> list[int]:
    with store.read() as tx:
        return sorted(c.id for c in tx.documents.keyword(tokens, pattern, 100))


# -- versions --------------------------------------------------------------------------


def test_versions_are_numbered_per_document_and_kept_whole(store: Store) -> None:
    meta = {"author": "ada", "tags": ["pricing", None], "note": "naïve 100%"}
    assert add(store, document("plan", "We sell the starter plan.", metadata=meta,
                               run_id="r1"),
               document("plan", "We sell the enterprise plan.", at=NOW + 1),
               document("plan", "Elsewhere.", namespace="other")) == [1, 2, 1]
    with store.read() as tx:
        history = tx.documents.history("notes", "plan")
        assert tx.documents.history("notes", "missing") == []
    assert [(d.version, d.text, d.created_at) for d in history] == [
        (1, "We sell the starter plan.", NOW), (2, "We sell the enterprise plan.", NOW + 1)]
    first = history[0]
    assert (first.namespace, first.doc_key, first.metadata) == ("notes", "plan", meta)
    assert (first.actor, first.reason, first.run_id, first.step_id) == (
        "person:ada", "imported", "r1", "write")


def test_latest_is_the_newest_version_of_each_matching_document_by_name(store: Store) -> None:
    add(store, document("b", "one"), document("b", "two"), document("a", "three"),
        document("c", "four", namespace="notes/eu"), document("d", "five", namespace="other"))
    with store.read() as tx:
        notes = tx.documents.latest("notes", 100)
        below = tx.documents.latest("notes%", 100)
        first = tx.documents.latest("%", 1)
    assert [(d.doc_key, d.version, d.text) for d in notes] == [("a", 1, "three"),
                                                             ("b", 2, "two")]
    assert [(d.namespace, d.doc_key) for d in below] == [
        ("notes", "a"), ("notes", "b"), ("notes/eu", "c")]
    assert [(d.namespace, d.doc_key) for d in first] == [("notes", "a")]


def test_a_new_version_retires_the_chunks_of_the_last(store: Store) -> None:
    add(store, document("plan", "alpha starter", "alpha pricing"))
    old = ids_of(store, ["alpha"])
    assert len(old) == 2
    add(store, document("plan", "beta enterprise"))
    assert ids_of(store, ["alpha"]) == []
    with store.read() as tx:
        [current] = tx.documents.keyword(["beta"], "notes", 10)
        assert tx.documents.chunks(old) == []  # retired chunks are left out
        retired = tx.documents.retired(0, current.id)
        assert tx.documents.retired(retired[0][1], current.id) == []  # none newer
    assert (current.doc_key, current.seq, current.text) == ("plan", 0, "beta enterprise")
    assert sorted(chunk for chunk, _ in retired) == old
    assert len({by for _, by in retired}) == 1  # both by the one new version


def test_a_rolled_back_document_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.documents.add(document("plan", "alpha"))
        raise RuntimeError("abandon")
    with store.read() as tx:
        assert tx.documents.history("notes", "plan") == []
    assert ids_of(store, ["alpha"]) == []
    assert add(store, document("plan", "alpha")) == [1]


# -- keyword search --------------------------------------------------------------------


def test_keyword_search_matches_any_token_best_first_within_the_namespaces(
        store: Store) -> None:
    add(store,
        document("billing", "Invoices are sent on the first Monday; invoices are due in 30 "
                 "days.", metadata={"subject": "globex"}),
        document("holidays", "The office closes for the holidays.", at=NOW + 10),
        document("eu", "Invoices for the EU office go to Berlin.", namespace="notes/eu",
                 metadata={"subject": "initech"}, at=NOW + 20),
        document("other", "Invoices, elsewhere.", namespace="other"))
    with store.read() as tx:
        docs = tx.documents
        hits = docs.keyword(["invoices"], "notes%", 10)
        either = docs.keyword(["holidays", "berlin"], "notes%", 10)
        one = docs.keyword(["invoices"], "notes%", 1)
        exact = docs.keyword(["invoices"], "notes", 10)
        assert docs.keyword([], "%", 10) == []
        assert docs.keyword(["nothing"], "%", 10) == []
    assert [(c.namespace, c.doc_key) for c in hits] == [("notes", "billing"),
                                                        ("notes/eu", "eu")]
    assert hits[0].score >= hits[1].score > 0  # "invoices" twice ranks first
    assert hits[0].metadata == {"subject": "globex"} and hits[0].created_at == NOW
    assert {c.doc_key for c in either} == {"holidays", "eu"}
    assert [c.doc_key for c in one] == ["billing"]
    assert [c.doc_key for c in exact] == ["billing"]


def test_keyword_search_narrowed_by_subject_and_time(store: Store) -> None:
    add(store,
        document("a", "renewal quote", metadata={"subject": "globex"}, at=NOW),
        document("b", "renewal quote", metadata={"subject": "initech"}, at=NOW + 10),
        document("c", "renewal quote", metadata={"author": "bob"}, at=NOW + 20))

    def keys(where: ChunkFilter) -> list[str]:
        with store.read() as tx:
            return sorted(c.doc_key for c in tx.documents.keyword(["renewal"], "%", 10, where))

    assert keys(ChunkFilter()) == ["a", "b", "c"]
    assert keys(ChunkFilter(subject="initech")) == ["b"]
    assert keys(ChunkFilter(since=NOW + 10)) == ["b", "c"]
    assert keys(ChunkFilter(until=NOW + 10)) == ["a"]  # until is exclusive
    assert keys(ChunkFilter(subject="globex", since=NOW + 1)) == []


# -- threads ---------------------------------------------------------------------------


def test_a_thread_is_read_in_order_with_its_neighbours(store: Store) -> None:
    add(store, *[document(f"m{p}", f"message {p}", "its second chunk", namespace="chat",
                          thread="t1", position=p, at=NOW + p) for p in (1, 2, 4, 5, 7)])
    add(store, document("x", "another thread", namespace="chat", thread="t2", position=3))
    with store.read() as tx:
        middle = tx.documents.thread("chat", "t1", 2, 4)
        around = tx.documents.thread("chat", "t1", 2, 4, around=1)
        wide = tx.documents.thread("chat", "t1", 0, 100, around=5)
    assert [(c.position, c.doc_key, c.text) for c in middle] == [
        (2, "m2", "message 2"), (4, "m4", "message 4")]  # first chunks only
    assert [c.position for c in around] == [1, 2, 4, 5]
    assert [c.position for c in wide] == [1, 2, 4, 5, 7]
    assert middle[0].created_at == NOW + 2 and '"author"' in middle[0].metadata  # as stored


def test_a_context_chunk_answers_for_its_chunk_and_is_replaced_whole(store: Store) -> None:
    add(store, *[document(f"m{p}", f"message {p}", namespace="chat", thread="t1", position=p)
                 for p in (1, 2)])
    with store.read() as tx:
        _, second = tx.documents.thread("chat", "t1", 1, 2)
    with store.transaction() as tx:
        tx.documents.set_context(second, "chat", "t1", "message 1 about the zebra")
    with store.read() as tx:
        assert tx.documents.keyword_context(["zebra"], "chat", 10) == [second.id]
        assert tx.documents.keyword_context(["zebra"], "other", 10) == []
        assert tx.documents.keyword(["zebra"], "chat", 10) == []  # not a document's own
        assert [c.position for c in tx.documents.thread("chat", "t1", 1, 2)] == [1, 2]
    with store.transaction() as tx:
        tx.documents.set_context(second, "chat", "t1", "message 1 about the giraffe")
    with store.read() as tx:
        assert tx.documents.keyword_context(["zebra"], "chat", 10) == []
        assert tx.documents.keyword_context(["giraffe", "zebra"], "chat", 10) == [second.id]
        assert tx.documents.keyword_context([], "chat", 10) == []


# -- vectors ---------------------------------------------------------------------------


def test_the_embedding_model_is_recorded_and_re_embeds_count_generations(
        store: Store) -> None:
    with store.transaction() as tx:
        assert tx.documents.embedding_model() is None
        tx.documents.use_model(MODEL, EMBEDDER.dimensions)
        indexed = tx.documents.index_name is not None
        model = tx.documents.embedding_model()
    assert model == EmbeddingModel(MODEL, 8, indexed, model.generation if model else 0)
    add(store, document("a", "alpha"))
    with store.transaction() as tx:
        [(chunk_id, text)] = tx.documents.stale(MODEL, 0, 10)
        tx.documents.set_vectors(MODEL, [(chunk_id, blob(text))])
    with store.read() as tx:
        again = tx.documents.embedding_model()
    assert again is not None and model is not None
    assert (again.model, again.dim, again.indexed) == (MODEL, 8, indexed)
    assert again.generation == model.generation + 1


def test_vectors_of_the_current_chunks_stale_ones_and_counts(store: Store) -> None:
    with store.transaction() as tx:
        tx.documents.use_model(MODEL, EMBEDDER.dimensions)
    add(store, document("a", "alpha one", "alpha two", embedded=True),
        document("b", "beta", namespace="other", embedded=True),
        document("c", "gamma"))  # written without vectors
    with store.read() as tx:
        vectors = tx.documents.vectors(MODEL)
        stale = tx.documents.stale(MODEL, 0, 10)
        assert tx.documents.counts(MODEL) == (4, 3)
        assert tx.documents.counts("another-model") == (4, 0)
        assert len(tx.documents.stale("another-model", 0, 10)) == 4
    ids = [chunk_id for chunk_id, _, _ in vectors]
    assert ids == sorted(ids)
    assert [(ns, bytes(b)) for _, ns, b in vectors] == [
        ("notes", blob("alpha one")), ("notes", blob("alpha two")), ("other", blob("beta"))]
    assert [text for _, text in stale] == ["gamma"]
    with store.read() as tx:
        assert [i for i, _, _ in tx.documents.vectors(MODEL, after=ids[0])] == ids[1:]
        assert [i for i, _, _ in tx.documents.vectors(MODEL, limit=1)] == ids[:1]
    with store.transaction() as tx:
        tx.documents.set_vectors(MODEL, [(stale[0][0], blob("gamma"))])
    add(store, document("a", "alpha three", embedded=True))  # retires a's two vectors
    with store.read() as tx:
        assert tx.documents.counts(MODEL) == (3, 3)
        assert tx.documents.stale(MODEL, 0, 10) == []
        assert [ns for _, ns, _ in tx.documents.vectors(MODEL)] == ["other", "notes", "notes"]


def test_nearest_uses_the_stores_own_index_or_says_it_has_none(store: Store) -> None:
    with store.transaction() as tx:
        tx.documents.use_model(MODEL, EMBEDDER.dimensions)
    add(store, document("a", "alpha alpha", embedded=True),
        document("b", "beta gamma", embedded=True),
        document("c", "alpha delta", namespace="other", embedded=True))
    with store.transaction() as tx:
        index = tx.documents.index_name
        nearest = tx.documents.nearest(blob("alpha alpha"), "%", 2)
        in_other = tx.documents.nearest(blob("alpha alpha"), "other", 5)
        rebuilt = tx.documents.reindex()
        after = tx.documents.nearest(blob("alpha alpha"), "notes", 1)
        chunks = {c.id: c.doc_key for c in tx.documents.chunks(
            [i for i, _, _ in tx.documents.vectors(MODEL)])}
    if index is None:  # SQLite, or PostgreSQL without pgvector: memory searches them
        assert (nearest, in_other, after, rebuilt) == (None, None, None, 0)
        return
    assert nearest is not None and in_other is not None and after is not None
    assert chunks[nearest[0]] == "a" and len(nearest) == 2
    assert [chunks[i] for i in in_other] == ["c"]
    assert rebuilt == 3 and [chunks[i] for i in after] == ["a"]
