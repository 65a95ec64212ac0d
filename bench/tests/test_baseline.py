"""The benchmark's baseline retriever: tokenizer, BM25, exact vectors, hybrid search."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from locomo import baseline
from locomo.baseline import BM25Index, HybridRetriever, Recency, VectorIndex, stem, tokenize

DOCS = {
    "garden": "Notes on the vegetable garden: tomatoes, beans and watering schedules.",
    "invoice": "Invoice 42 for the consulting engagement is due at the end of March.",
    "hiking": "We went hiking in the mountains and camped by a lake.",
    "cooking": "A recipe for tomato soup with basil and garlic.",
}


def bm25() -> BM25Index:
    index = BM25Index()
    for doc_id, text in DOCS.items():
        index.add(doc_id, text)
    return index


# --- tokenizer ---------------------------------------------------------------------------


def test_tokenize_lowercases_drops_stopwords_and_stems() -> None:
    assert tokenize("The Kids were PAINTING sunrises!") == ["kid", "paint", "sunris"]


def test_tokenize_keeps_unicode_words_and_numbers() -> None:
    assert tokenize("Café Zürich, 2023 — naïve") == ["café", "zürich", "2023", "naïv"]


def test_stemmer_conflates_common_forms() -> None:
    assert stem("running") == stem("runs") == "run"
    assert stem("liked") == stem("likes") == stem("like")
    assert stem("stories") == stem("story")
    assert stem("churches") == stem("church")
    assert stem("classes") == stem("class")
    assert stem("d1") == "d1"  # non-alphabetic tokens are left alone
    assert stem("bus") == "bus"


# --- BM25 --------------------------------------------------------------------------------


def test_bm25_ranks_the_obvious_document_first() -> None:
    index = bm25()
    assert index.search("when is the invoice due?", k=3)[0][0] == "invoice"
    assert index.search("tomato", k=3)[0][0] in {"garden", "cooking"}
    assert [d for d, _ in index.search("hiked to the lake", k=1)] == ["hiking"]


def test_bm25_leaves_out_documents_without_a_shared_term() -> None:
    index = bm25()
    assert index.search("quantum chromodynamics", k=5) == []
    assert index.search("the and of", k=5) == []  # stopwords only
    assert {d for d, _ in index.search("tomatoes", k=10)} == {"garden", "cooking"}


def test_bm25_score_matches_the_formula() -> None:
    index = BM25Index(k1=1.2, b=0.75)
    index.add("a", "apple apple banana")
    index.add("b", "banana cherry")
    # "apple": df=1, N=2, tf=2 in a (len 3), avgdl 2.5
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    norm = 1 - 0.75 + 0.75 * 3 / 2.5
    expected = idf * 2 * 2.2 / (2 + 1.2 * norm)
    [(doc_id, score)] = index.search("apple", k=5)
    assert doc_id == "a"
    assert score == pytest.approx(expected)


def test_bm25_filter_k_replace_and_remove() -> None:
    index = bm25()
    hits = index.search("tomato", k=5, filter=lambda d: d != "cooking")
    assert [d for d, _ in hits] == ["garden"]
    assert len(index.search("tomato garden beans basil", k=1)) == 1
    index.add("garden", "nothing about vegetables any more")
    assert [d for d, _ in index.search("tomato", k=5)] == ["cooking"]
    assert index.remove("cooking")
    assert not index.remove("cooking")
    assert index.search("tomato", k=5) == []
    assert len(index) == 3


def test_bm25_ties_break_by_insertion_order() -> None:
    index = BM25Index()
    index.add("z", "same words here")
    index.add("a", "same words here")
    assert [d for d, _ in index.search("words", k=2)] == ["z", "a"]


def test_bm25_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        BM25Index(b=1.5)


# --- vectors -----------------------------------------------------------------------------


def vectors() -> VectorIndex:
    index = VectorIndex()
    index.add("x", [1.0, 0.0, 0.0])
    index.add("xy", [10.0, 10.0, 0.0])  # scale must not matter
    index.add("z", [0.0, 0.0, 3.0])
    return index


def test_vector_search_is_cosine_over_normalised_vectors() -> None:
    hits = vectors().search([2.0, 0.0, 0.0], k=3)
    assert [d for d, _ in hits] == ["x", "xy", "z"]
    assert hits[0][1] == pytest.approx(1.0)
    assert hits[1][1] == pytest.approx(1 / math.sqrt(2))
    assert hits[2][1] == pytest.approx(0.0)


def test_vector_search_filter_k_and_errors() -> None:
    index = vectors()
    assert [d for d, _ in index.search([1.0, 0.0, 0.0], k=5, filter=lambda d: d != "x")] == [
        "xy", "z"]
    assert len(index.search([0.0, 0.0, 1.0], k=1)) == 1
    with pytest.raises(ValueError):
        index.add("bad", [1.0, 2.0])
    with pytest.raises(ValueError):
        index.search([1.0, 2.0], k=1)
    index.add("zero", [0.0, 0.0, 0.0])
    assert dict(index.search([1.0, 0.0, 0.0], k=5))["zero"] == 0.0
    assert index.remove("x") and not index.remove("x")
    assert [d for d, _ in index.search([1.0, 0.0, 0.0], k=1)] == ["xy"]


def test_vector_search_pure_python_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    query = [0.3, 0.9, 0.1]
    expected = vectors().search(query, k=3)
    monkeypatch.setattr(baseline, "_numpy", lambda: None)
    got = vectors().search(query, k=3)
    assert [d for d, _ in got] == [d for d, _ in expected]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert a == pytest.approx(b)


# --- hybrid ------------------------------------------------------------------------------

CONCEPTS = ("money", "nature", "food")
SYNONYMS = {
    "money": {"invoice", "bill", "payment", "due", "consulting"},
    "nature": {"garden", "hiking", "mountains", "lake", "outdoors"},
    "food": {"tomato", "soup", "recipe", "basil", "dinner"},
}


class FakeEmbedder:
    """Bag-of-concepts vectors so that "outdoors" is near "hiking" with no shared word."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        out: list[list[float]] = []
        for text in texts:
            words = set(text.lower().replace(".", " ").replace(",", " ").split())
            out.append([float(len(words & SYNONYMS[c])) + 0.01 for c in CONCEPTS])
        return out


def test_keyword_only_retriever_says_so() -> None:
    retriever = HybridRetriever()
    for doc_id, text in DOCS.items():
        retriever.add(doc_id, text)
    hits = retriever.search("invoice due", k=2)
    assert hits[0].id == "invoice"
    assert hits[0].mode == "keyword"
    assert hits[0].keyword_rank == 1 and hits[0].vector_rank is None
    assert hits[0].score == pytest.approx(1 / 61)
    assert retriever.search("nothing matches", k=3) == []


def test_hybrid_fuses_keyword_and_vector_rankings() -> None:
    embed = FakeEmbedder()
    retriever = HybridRetriever(embed)
    for doc_id, text in DOCS.items():
        retriever.add(doc_id, text)
    assert embed.calls == []  # embedding is lazy
    hits = retriever.search("outdoors", k=2)  # no keyword match at all
    assert embed.calls == [4, 1]  # one batch for the documents, one for the query
    assert hits[0].id == "hiking"
    assert hits[0].mode == "hybrid"
    assert hits[0].keyword_rank is None and hits[0].vector_rank == 1
    both = retriever.search("tomato soup recipe", k=1)[0]
    assert both.id == "cooking" and both.keyword_rank == 1 and both.vector_rank == 1
    assert both.score == pytest.approx(2 / 61)


def test_hybrid_filter_sees_metadata() -> None:
    retriever = HybridRetriever(FakeEmbedder())
    retriever.add("a", "invoice for March", {"namespace": "finance"})
    retriever.add("b", "invoice for April", {"namespace": "archive"})
    hits = retriever.search("invoice", k=5, filter=lambda _id, meta: meta["namespace"] == "finance")
    assert [h.id for h in hits] == ["a"]
    assert retriever.remove("a") and not retriever.remove("a")
    assert [h.id for h in retriever.search("invoice", k=5)] == ["b"]


def test_hybrid_recency_prefers_the_newer_of_equal_matches() -> None:
    retriever = HybridRetriever()
    retriever.add("old", "the invoice is paid", {"ts": "2024-01-01T00:00:00+00:00"})
    retriever.add("new", "the invoice is paid", {"ts": "2024-06-01T00:00:00+00:00"})
    assert [h.id for h in retriever.search("invoice", k=2)] == ["old", "new"]
    day = 86400.0
    assert [h.id for h in retriever.search("invoice", k=2, recency=30 * day)] == ["new", "old"]
    option = Recency(half_life_seconds=30 * day, key="missing")
    assert [h.id for h in retriever.search("invoice", k=2, recency=option)] == ["old", "new"]
