"""Documents and hybrid retrieval over the store, on both backends."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from soloist.errors import InputError, InvalidState
from soloist.memory.documents import Documents, SearchHit, chunk_text, pack
from soloist.memory.facts import Cause
from soloist.memory.ranking import RECIPE, RECIPE_WITHOUT_WINDOWS, Recipe
from soloist.store import open_store
from soloist.store.base import Store


class HashingEmbedder:
    """A tiny deterministic embedder for tests: hashed bag of words, normalised."""

    name = "test-hashing-32"
    dimensions = 32

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in text.lower().split():
                digest = hashlib.sha256(word.strip(".,?!").encode()).digest()
                vector[digest[0] % self.dimensions] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


CAUSE = Cause("person:test", "import")


def test_keyword_and_vector_rankings_are_fused(store: Store) -> None:
    docs = Documents(store, HashingEmbedder())
    docs.add("notes", "billing", "Invoices are sent on the first Monday of each month.", CAUSE)
    docs.add("notes", "holidays", "The office is closed between Christmas and New Year.",
             CAUSE, {"author": "ada"})
    docs.add("other", "billing", "Invoices for Globex go to their Berlin office.", CAUSE)
    hits = docs.search("when are invoices sent", namespace="notes", k=5)
    assert hits[0].chunk.doc_key == "billing" and hits[0].chunk.namespace == "notes"
    assert hits[0].keyword_rank == 1 and hits[0].vector_rank is not None
    assert all(h.chunk.namespace == "notes" for h in hits)
    everywhere = docs.search("invoices office", namespace="*", k=5)
    assert {h.chunk.namespace for h in everywhere} == {"notes", "other"}


def test_a_new_version_replaces_the_current_chunks(store: Store) -> None:
    docs = Documents(store, HashingEmbedder())
    assert docs.add("notes", "plan", "We sell the starter plan.", CAUSE) == 1
    assert docs.add("notes", "plan", "We sell the enterprise plan now.", CAUSE) == 2
    texts = [h.chunk.text for h in docs.search("plan", "notes")]
    assert texts == ["We sell the enterprise plan now."]


def test_keyword_only_without_an_embedder_and_hostile_queries(store: Store) -> None:
    docs = Documents(store)
    docs.add("notes", "a", 'Quotes " and NEAR( operators ) stay text.', CAUSE)
    hits = docs.search('"NEAR( operators OR AND * quotes', "notes")
    assert hits and hits[0].vector_rank is None


def test_chunking_packs_paragraphs() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 500 for i in range(5))
    chunks = chunk_text(text, limit=1200)
    assert len(chunks) == 3 and all(len(c) <= 1200 for c in chunks)
    assert chunk_text("a" * 3000, limit=1200) == ["a" * 1200, "a" * 1200, "a" * 600]


def test_many_documents_in_one_transaction(store: Store, tmp_path: Path) -> None:
    docs = Documents(store, HashingEmbedder())
    items = [("conv-1", f"D1:{i}", f"speaker {i % 2}: line number {i} about topic {i % 7}",
              {"session": 1}) for i in range(200)]
    assert docs.add_many(items, CAUSE) == 200
    hits = docs.search("topic 3", "conv-1", k=10)
    assert len(hits) == 10


class GaussianEmbedder(HashingEmbedder):
    """Each word a fixed random direction: sums of them almost never tie."""

    name = "test-gaussian-24"
    dimensions = 24

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        out = []
        for text in texts:
            total = np.zeros(self.dimensions)
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
                total += np.random.default_rng(seed).standard_normal(self.dimensions)
            out.append([float(x) for x in total / (np.linalg.norm(total) or 1.0)])
        return out


def in_memory_vectors(store: Store) -> None:
    """Search vectors exactly in memory, as on SQLite, on PostgreSQL too."""
    if hasattr(store, "vectors"):
        store.vectors = None


class OtherEmbedder(HashingEmbedder):
    name = "test-hashing-other"
    dimensions = 16


def test_a_model_change_is_refused_until_reembed(db_url: str) -> None:
    store = open_store(db_url)
    try:
        Documents(store, HashingEmbedder()).add("notes", "billing",
                                                "Invoices are sent on Mondays.", CAUSE)
        docs = Documents(store, OtherEmbedder())
        assert docs.status()["reembed_needed"] is True
        for attempt in (lambda: docs.search("invoices", "notes"),
                        lambda: docs.add("notes", "x", "More text.", CAUSE)):
            with pytest.raises(InvalidState, match="soloist memory reembed"):
                attempt()
        assert docs.reembed() == 1
        status = docs.status()
        assert (status["model"], status["dimensions"], status["embedded"]) == (
            "test-hashing-other", 16, 1)
        assert status["reembed_needed"] is False
        hits = docs.search("when are invoices sent", "notes")
        assert hits[0].chunk.doc_key == "billing" and hits[0].vector_rank == 1
        assert docs.reembed() == 0  # nothing left: a second run is a no-op
    finally:
        store.close()


def test_documents_written_before_an_embedder_are_embedded_by_reembed(db_url: str) -> None:
    store = open_store(db_url)
    try:
        Documents(store).add("notes", "a", "Refunds within thirty days.", CAUSE)
        docs = Documents(store, HashingEmbedder())
        assert docs.status()["reembed_needed"] is True
        assert docs.reembed() == 1
        assert docs.search("refunds", "notes")[0].vector_rank == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_pgvector_index_agrees_with_the_exact_search_and_is_rebuilt(pg_url: str) -> None:
    texts = [f"note {i} about {w} and {v}" for i, (w, v) in enumerate(
        (w, v) for w in ("invoices", "refunds", "contracts", "meetings", "budgets")
        for v in ("alpha", "beta", "gamma", "delta"))]
    store = open_store(pg_url)
    try:
        in_memory_vectors(store)  # as on a server without pgvector
        docs = Documents(store, GaussianEmbedder())
        docs.add_many([(f"ns{i % 3}", f"d{i}", t, {}) for i, t in enumerate(texts)], CAUSE)
        assert docs.status()["search"] == "exact, in memory"
        exact = [[h.chunk.id for h in docs.search(q, ns, 5)]
                 for q in ("refunds beta", "meetings", "budgets delta") for ns in ("ns1", "*")]
    finally:
        store.close()
    reopened = open_store(pg_url)  # has pgvector: the index is built from the chunks
    try:
        docs = Documents(reopened, GaussianEmbedder())
        assert docs.status()["search"].startswith("pgvector")
        indexed = [[h.chunk.id for h in docs.search(q, ns, 5)]
                   for q in ("refunds beta", "meetings", "budgets delta") for ns in ("ns1", "*")]
        assert indexed == exact
        docs.add("ns1", "d1", "note 1 rewritten about holidays", CAUSE)
        with reopened.read() as tx:
            assert tx.documents.nearest(
                pack(GaussianEmbedder().embed(["note 1 about refunds and beta"])[0]),
                "ns1", 50) is not None
        assert all(h.chunk.text != texts[1] for h in docs.search("refunds beta", "ns1", 10))
    finally:
        reopened.close()


def test_the_exact_in_memory_search_follows_globs_growth_and_retirement(db_url: str) -> None:
    store = open_store(db_url)
    try:
        in_memory_vectors(store)
        docs = Documents(store, GaussianEmbedder())
        docs.add_many([(f"clients/c{i % 7}", f"d{i}", f"memo {i} on topic{i % 11}", {})
                       for i in range(1500)], CAUSE)
        docs.add("clients/c1/notes", "x", "memo special on topic3", CAUSE)
        docs.add("other", "y", "memo special on topic3", CAUSE)
        hits = docs.search("memo special on topic3", "clients/*", 50)
        assert hits[0].chunk.namespace == "clients/c1/notes"
        assert all(h.chunk.namespace.startswith("clients/") for h in hits)
        assert len(hits) == 50
        assert {h.chunk.namespace for h in docs.search("memo special", "clients/c1", 50)} == {
            "clients/c1"}
        docs.add("clients/c1/notes", "x", "rewritten entirely differently", CAUSE)
        texts = [h.chunk.text for h in docs.search("memo special on topic3", "clients/*", 50)]
        assert "memo special on topic3" not in texts
        assert "rewritten entirely differently" in [
            h.chunk.text for h in docs.search("rewritten", "clients/c1/*", 5)]
    finally:
        store.close()


def test_search_filters_by_subject_and_time_and_favours_recent(db_url: str) -> None:
    store = open_store(db_url)
    try:
        docs = Documents(store, GaussianEmbedder())
        docs.add("mail", "m1", "Invoice question from the customer", CAUSE, {"subject": "acme"})
        docs.add("mail", "m2", "Invoice question from the customer again", CAUSE,
                 {"subject": "globex"})
        with store.read() as tx:
            written = {c.doc_key: c.created_at for c in tx.documents.chunks([1, 2])}
        keys = [h.chunk.doc_key for h in docs.search("invoice question", "mail",
                                                     subject="globex")]
        assert keys == ["m2"]
        later = max(written.values()) + 1
        assert docs.search("invoice question", "mail", since=later) == []
        assert {h.chunk.doc_key for h in docs.search("invoice question", "mail",
                                                     until=later)} == {"m1", "m2"}
        time.sleep(0.3)
        docs.add("mail", "m3", "Invoice question from the customer", CAUSE)
        plain = [h.chunk.doc_key for h in docs.search("invoice question from the customer",
                                                      "mail")]
        recent = docs.search("invoice question from the customer", "mail",
                             recency_days=0.1 / 86400)  # half-life 0.1 s
        assert plain[0] == "m1" and recent[0].chunk.doc_key == "m3"
    finally:
        store.close()


def thread_turns(turns: list[tuple[str, str]], start: int = 0,
                 thread: str = "s1") -> list[tuple[str, str, str, dict[str, object]]]:
    return [("chat", f"{thread}:{start + i}", f"{who}: {text}",
             {"thread": thread, "position": start + i, "speaker": who})
            for i, (who, text) in enumerate(turns)]


def test_a_thread_turn_is_found_by_the_words_of_its_neighbours(db_url: str) -> None:
    store = open_store(db_url)
    try:
        docs = Documents(store, GaussianEmbedder())
        docs.add_many(thread_turns([
            ("Ann", "I started baking sourdough bread this winter."),
            ("Bob", "Did you run the Lisbon marathon after all?"),
            ("Ann", "Yes, last May!"),
            ("Bob", "Amazing. My cat is sick again."),
        ]), CAUSE)
        hits = docs.search("When did Ann run the Lisbon marathon?", "chat", 2)
        assert "chat/s1:2" in {f"{h.chunk.namespace}/{h.chunk.doc_key}" for h in hits}
        # Context chunks are keyword-only and never surface themselves.
        assert all(h.chunk.text.count(":") == 1 for h in docs.search("marathon", "chat", 10))
        assert docs.status()["chunks"] == 4 and docs.reembed() == 0
    finally:
        store.close()


def test_a_growing_thread_updates_its_neighbours_context(db_url: str) -> None:
    store = open_store(db_url)
    try:
        docs = Documents(store)  # keyword only: the context alone must find it
        docs.add_many(thread_turns([("Ann", "Guess what happened on Friday."),
                                    ("Bob", "Tell me!")]), CAUSE)
        assert docs.search("promotion", "chat") == []
        docs.add_many(thread_turns([("Ann", "I got the promotion to team lead.")], start=2),
                      CAUSE)
        found = [h.chunk.doc_key for h in docs.search("promotion", "chat", 3)]
        assert found[0] == "s1:2" and set(found) == {"s1:0", "s1:1", "s1:2"}
        # A new version of a turn replaces its context too: the old words are gone.
        docs.add("chat", "s1:2", "Ann: I quit my job.",
                 cause=CAUSE, metadata={"thread": "s1", "position": 2, "speaker": "Ann"})
        assert docs.search("promotion", "chat") == []
        assert {h.chunk.doc_key for h in docs.search("quit", "chat", 5)} == {
            "s1:0", "s1:1", "s1:2"}
    finally:
        store.close()


def test_a_thread_without_a_position_is_refused_before_any_write(db_url: str) -> None:
    store = open_store(db_url)
    try:
        docs = Documents(store)
        with pytest.raises(InputError, match="chat/k names thread 's1' but its metadata has "
                                             "no integer 'position'"):
            docs.add_many([("chat", "ok", "fine", {}),
                           ("chat", "k", "text", {"thread": "s1"})], CAUSE)
        assert docs.search("fine", "chat") == []
    finally:
        store.close()


def test_a_reembed_elsewhere_reaches_a_reader_holding_vectors(db_url: str) -> None:
    store = open_store(db_url)
    try:
        in_memory_vectors(store)
        reader = Documents(store, GaussianEmbedder())
        reader.add("notes", "a", "Invoices go out on Mondays.", CAUSE)
        assert reader.search("invoices", "notes")[0].vector_rank == 1  # vectors loaded
        Documents(store).add("notes", "b", "Zebras graze at dawn.", CAUSE)  # no vector
        assert Documents(store, GaussianEmbedder()).reembed() == 1
        hit = reader.search("zebras graze", "notes")[0]
        assert hit.chunk.doc_key == "b" and hit.vector_rank == 1
    finally:
        store.close()


def test_namespace_globs_are_exact_in_keyword_search(db_url: str) -> None:
    store = open_store(db_url)
    try:
        docs = Documents(store)
        for ns in ("ns1", "ns10", "a/ns1", "ns1/sub", "ns_1"):
            docs.add(ns, "d", f"quarterly invoice for {ns}", CAUSE)
        def found(glob: str) -> set[str]:
            return {h.chunk.namespace for h in docs.search("quarterly invoice", glob, 10)}
        assert found("ns1") == {"ns1"}
        assert found("ns1*") == {"ns1", "ns10", "ns1/sub"}
        assert found("ns1/*") == {"ns1/sub"}
        assert found("*ns1") == {"ns1", "a/ns1"}
        assert found("ns_1") == {"ns_1"}
        assert found("*") == {"ns1", "ns10", "a/ns1", "ns1/sub", "ns_1"}
        docs.add("ns1", "d", "nothing to see", CAUSE)  # the old version leaves the index
        assert found("ns1") == set()
    finally:
        store.close()


class PromptedEmbedder:
    """Stored texts and queries embed differently, as e5 or EmbeddingGemma do: "settled"
    and "paid" point the same way, nothing else does."""

    name = "test-prompted-2"
    dimensions = 2

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def _vector(self, text: str) -> list[float]:
        return [1.0, 0.0] if "settled" in text or "paid" in text else [0.0, 1.0]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.seen.extend(("document", t) for t in texts)
        return [self._vector(t) for t in texts]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.seen.extend(("query", t) for t in texts)
        return [self._vector(t) for t in texts]


def test_queries_use_the_query_prompt_and_the_vector_weight_is_configurable(
        db_url: str) -> None:
    from soloist.config import parse_table
    from soloist.config.sections import SearchSection
    from soloist.memory.ranking import configured_recipes

    store = open_store(db_url)
    try:
        embedder = PromptedEmbedder()
        plain = Documents(store, embedder)
        plain.add("books", "late", "The invoice was late again.", CAUSE)
        plain.add("books", "settled", "Globex settled the bill on Friday.", CAUSE)
        assert embedder.seen == [("document", "The invoice was late again."),
                                 ("document", "Globex settled the bill on Friday.")]
        assert plain.search("invoice paid", "books", k=2)[0].chunk.doc_key == "late"
        assert embedder.seen[-1] == ("query", "invoice paid")
        # A model the user trusts more than the words: weigh its ranking up.
        trusting = Documents(store, embedder, recipes=configured_recipes(parse_table(
            SearchSection, {"vector_weight": 5, "keyword_weight": 0.1}, "memory.search")))
        assert trusting.search("invoice paid", "books", k=2)[0].chunk.doc_key == "settled"
    finally:
        store.close()


def test_document_versions_are_kept_and_read_back(store: Store) -> None:
    from soloist.errors import NotFound

    docs = Documents(store)
    docs.add("legal/eu", "terms", "Refunds within 14 days.", CAUSE, {"author": "ada"})
    docs.add("legal/eu", "terms", "Refunds within 30 days.",
             Cause("agent:clerk@3", "the policy changed", "r1", "s1"))
    docs.add("legal_us", "terms", "No refunds.", CAUSE)  # "_" is not a wildcard
    history = docs.history("legal/eu", "terms")
    assert [(d.version, d.actor, d.reason, d.run_id) for d in history] == [
        (1, "person:test", "import", None), (2, "agent:clerk@3", "the policy changed", "r1")]
    assert history[0].metadata == {"author": "ada"}
    assert docs.get("legal/eu", "terms").text == "Refunds within 30 days."
    assert docs.get("legal/eu", "terms", version=1).text == "Refunds within 14 days."
    assert docs.get("legal/eu", "terms", as_of=history[1].created_at - 1e-6).version == 1
    assert [(d.namespace, d.version) for d in docs.latest("legal/*")] == [("legal/eu", 2)]
    assert [d.namespace for d in docs.latest()] == ["legal/eu", "legal_us"]
    with pytest.raises(NotFound, match="there is no document legal/eu/privacy"):
        docs.history("legal/eu", "privacy")


class QueryRecordingEmbedder(HashingEmbedder):
    """The hashing embedder, recording the text of every query it embeds."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.queries.extend(texts)
        return self.embed(texts)


def without_priors() -> tuple[Recipe, Recipe]:
    """The default recipes with every conversation prior switched off."""
    return (replace(RECIPE, neighbour_weights=(), group_weight=0.0, other_speaker_factor=1.0),
            replace(RECIPE_WITHOUT_WINDOWS, neighbour_weights=(), group_weight=0.0,
                    other_speaker_factor=1.0))


def ranked(hits: Sequence[SearchHit]) -> list[tuple[str, float]]:
    return [(h.chunk.doc_key, h.score) for h in hits]


BRIEFS = [
    ("acme", "pricing-brief", "Pricing brief: Ada decided to keep the starter plan at 20 "
     "euros a month and to drop the annual discount.", {"author": "Bob"}),
    ("acme", "ada-notes", "Ada's notes: pricing questions to raise at the next review.",
     {"author": "Ada"}),
    ("acme", "cy-notes", "Cy's notes on the pricing page copy and the onboarding mails.",
     {"author": "Cy"}),
    ("acme", "offsite", "The offsite is in Lisbon; Ada books the rooms.", {"author": "Cy"}),
]


def test_a_named_author_demotes_no_business_document(db_url: str) -> None:
    store = open_store(db_url)
    try:
        embedder = QueryRecordingEmbedder()
        docs = Documents(store, embedder)
        docs.add_many(BRIEFS, CAUSE)
        query = "What did Ada decide on pricing?"
        hits = docs.search(query, "acme", k=4)
        # The brief Bob wrote answers the question: Ada is named, but Bob is no speaker.
        assert hits[0].chunk.doc_key == "pricing-brief"
        # Nothing was demoted or lifted: the scores are those of the plain fusion.
        plain = Documents(store, embedder, recipes=without_priors())
        assert ranked(hits) == ranked(plain.search(query, "acme", k=4))
        # The query vector keeps the name: these documents are no conversation.
        assert embedder.queries == [query, query]
        # A thread of minutes with authors but no speakers is no conversation either.
        docs.add_many([("acme", f"minutes-{i}", text, {"thread": "pricing review",
                                                         "position": i, "author": who})
                       for i, (who, text) in enumerate([
                           ("Cy", "Minutes of the pricing review, with Ada and Bob."),
                           ("Bob", "Ada decided the starter plan stays at 20 euros."),
                           ("Cy", "Next review in June.")])], CAUSE)
        embedder.queries.clear()
        hits = docs.search(query, "acme", k=6)
        assert ranked(hits) == ranked(plain.search(query, "acme", k=6))
        assert embedder.queries == [query, query]
    finally:
        store.close()


def test_turns_of_a_conversation_still_get_the_conversation_priors(db_url: str) -> None:
    store = open_store(db_url)
    try:
        embedder = QueryRecordingEmbedder()
        docs = Documents(store, embedder)
        docs.add_many([*thread_turns([
            ("Ann", "I finally painted the lake at sunrise."),
            ("Bob", "I painted the fence, nothing as grand."),
            ("Ann", "It took three mornings."),
            ("Bob", "Next time paint the mountains."),
        ]), ("chat", "note", "Bob's note: the painted fence needs a second coat.",
             {"author": "Bob"})], CAUSE)
        query = "What did Ann paint?"
        hits = {h.chunk.doc_key: h.score for h in docs.search(query, "chat", k=5)}
        no_speaker = Documents(store, embedder, recipes=(
            replace(RECIPE, other_speaker_factor=1.0),
            replace(RECIPE_WITHOUT_WINDOWS, other_speaker_factor=1.0)))
        undemoted = {h.chunk.doc_key: h.score for h in no_speaker.search(query, "chat", k=5)}
        # Bob's turns count half when the question names Ann; Ann's and the note do not.
        assert hits["s1:1"] == pytest.approx(0.5 * undemoted["s1:1"])
        assert hits["s1:0"] == pytest.approx(undemoted["s1:0"])
        assert hits["note"] == pytest.approx(undemoted["note"])
        # The turns are looked for without the speaker's name, the note with it.
        assert embedder.queries[:2] == ["What did paint?", query]
        # Neighbours and the thread prior lift the turns of the conversation only.
        plain = {h.chunk.doc_key: h.score
                 for h in Documents(store, embedder, recipes=without_priors()).search(
                     query, "chat", k=5)}
        assert hits["s1:2"] > plain["s1:2"]
        assert hits["note"] == pytest.approx(plain["note"])
    finally:
        store.close()


def test_a_conversation_alone_is_searched_with_the_name_free_vector_only(db_url: str) -> None:
    store = open_store(db_url)
    try:
        embedder = QueryRecordingEmbedder()
        docs = Documents(store, embedder)
        docs.add_many(thread_turns([("Ann", "I painted the lake."), ("Bob", "Nice!")]), CAUSE)
        assert docs.search("What did Ann paint?", "chat", k=2)
        assert embedder.queries == ["What did paint?"]
    finally:
        store.close()


class NameEmbedder:
    """Two directions: "ada" and everything else, so a query's vector shows the name."""

    name = "test-name-2"
    dimensions = 2

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            named = 1.0 if "ada" in re.findall(r"\w+", text.lower()) else 0.0
            norm = math.sqrt(named + 1.0)
            out.append([named / norm, 1.0 / norm])
        return out


def test_beside_a_conversation_other_documents_are_looked_for_with_the_names(
        db_url: str) -> None:
    store = open_store(db_url)
    try:
        docs = Documents(store, NameEmbedder())
        docs.add_many([*thread_turns([("Ada", "We plan the offsite."), ("Bob", "Fine by me.")]),
                       ("chat", "for-ada", "Notes for Ada on the venue.", {"author": "Cy"}),
                       ("chat", "venue", "Notes on the venue.", {"author": "Cy"})], CAUSE)
        rank = {h.chunk.doc_key: h.vector_rank or 0
                for h in docs.search("What did Ada plan?", "chat", k=10)}
        assert sorted(rank.values()) == [1, 2, 3, 4]
        # Ada is a speaker here, so the turns are looked for by "What did plan?": Bob's
        # turn comes nearer than Ada's. The notes are looked for by the whole query:
        # the one that names Ada comes nearer than the one that does not.
        assert rank["s1:1"] < rank["s1:0"]
        assert rank["for-ada"] < rank["venue"]
    finally:
        store.close()
