"""The product's text module: a query's words and the one reciprocal-rank fusion."""

from __future__ import annotations

import pytest

from soloist.memory.text import STOPWORDS, query_words, rrf_fuse, words


def test_words_are_lowercased_unicode_tokens_in_order() -> None:
    assert words("The Café in Zürich, 2023!") == ["the", "café", "in", "zürich", "2023"]


def test_query_words_leave_out_stopwords_unless_nothing_else_is_left() -> None:
    assert query_words("What did Ada decide on pricing?") == ["ada", "decide", "pricing"]
    assert query_words("Who was it?") == ["who", "was", "it"]
    assert query_words("") == []
    assert {"the", "and", "what"} <= STOPWORDS


def test_rrf_fuse_math() -> None:
    fused = rrf_fuse([["a", "b", "c"], ["b", "d"]], k=60)
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63)
    assert scores["d"] == pytest.approx(1 / 62)
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]


def test_rrf_fuse_weights_ties_and_duplicates() -> None:
    # a and b tie without weights: first appearance wins
    assert [d for d, _ in rrf_fuse([["a", "b"], ["b", "a"]])] == ["a", "b"]
    fused = rrf_fuse([["a", "b"], ["b", "a"]], k=0, weights=[1.0, 3.0])
    assert dict(fused) == pytest.approx({"a": 1 + 3 / 2, "b": 1 / 2 + 3})
    assert [d for d, _ in fused] == ["b", "a"]
    assert dict(rrf_fuse([["a", "a", "b"]], k=0)) == pytest.approx({"a": 1.0, "b": 1 / 3})
    assert rrf_fuse([]) == []
    with pytest.raises(ValueError):
        rrf_fuse([["a"]], weights=[1.0, 2.0])


def test_rrf_fuse_leaves_out_a_ranking_of_weight_zero() -> None:
    fused = rrf_fuse([["a"], ["b", "a"], ["c"]], k=0, weights=[1.0, 0.0, 2.0])
    assert fused == [("c", 2.0), ("a", 1.0)]
    assert [d for d, _ in rrf_fuse([[3, 1], [1, 2]], k=10)] == [1, 3, 2]  # any hashable ids
    with pytest.raises(ValueError):
        rrf_fuse([["a"]], k=-1)
