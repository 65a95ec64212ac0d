"""Words of a query, and the one reciprocal-rank fusion every search uses.

The stores' full-text engines (SQLite FTS5, PostgreSQL full text) tokenise and stem the
text themselves, so what is left here is picking a query's words and fusing rankings.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TypeVar

__all__ = ["STOPWORDS", "query_words", "rrf_fuse", "words"]

K = TypeVar("K", bound=Hashable)

# A small, conventional English stopword list (function words only).
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t d ll m re ve
    """.split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lowercased unicode word tokens, in order, stopwords included."""
    return _WORD.findall(text.lower())


def query_words(query: str) -> list[str]:
    """A query's words for a store's full-text engine, which stems them itself (porter,
    english): lowercased, stopwords left out unless nothing else is left."""
    found = words(query)
    return [w for w in found if w not in STOPWORDS] or found


def rrf_fuse(rankings: Sequence[Sequence[K]], k: float = 60,
             weights: Sequence[float] | None = None) -> list[tuple[K, float]]:
    """Reciprocal rank fusion: score(d) = sum_i weights[i] / (k + rank_i(d)), ranks from 1.

    Best first; ties are broken by first appearance (earlier rankings first). A document
    absent from a ranking gets nothing from it, a repeated id counts at its first rank only,
    and a ranking of weight 0 is left out whole (its ids do not become results).
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("rrf_fuse needs one weight per ranking")
    if k < 0:
        raise ValueError("rrf_fuse needs k >= 0")
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight == 0:
            continue
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    # A stable sort keeps the order of first appearance among equal scores.
    return sorted(scores.items(), key=lambda pair: -pair[1])
