"""Storage-free re-ranking of search candidates: the conversation recipe, and recency.

No LLM call anywhere: ``rank`` works on the rankings the store already produces (keyword
over the chunks, keyword over each thread turn with its neighbours, vectors) plus the
structure a conversation turn carries (its thread, its place there, who said it). The
rules, each with why:

1. A second keyword representation per thread turn: the turn with its neighbours
   (``window_text``). Answers in a dialogue are short ("Yes, last May!") and share few
   words with the question, whose words are usually in the turns around the answer.
2. Fusion by reciprocal rank with a small constant (k=10): the top few ranks of each list
   matter most.
3. A speaker prior: when the query names exactly one of the speakers, turns by the others
   are demoted, as the person asked about usually says the answer.
4. Neighbour propagation and a thread prior: a turn next to, or in the same thread as, a
   strong hit is more likely to hold the answer too.
5. The query *vector* for the turns is made without the speakers' names (``vector_query``;
   the keyword query and ``rank``'s ``query`` keep them): a name says who, not what, yet
   pulls the query embedding towards every turn addressed to or mentioning that person.
6. A query that asks for several things (``asks_for_several``) skips 4.: its answers lie
   apart, and the neighbours of the best hit would take their places.

Rules 3 to 6 are conversation priors: they touch only candidates that are turns of a
conversation (a ``Candidate`` with a group, a position or a speaker; ``Documents`` gives
those only to documents with thread and speaker metadata). Every other candidate keeps its
fused score. What each rule measured, and what was tried and left out, is in
bench/README.md.

Caller contract at ingestion (only for ``RECIPE``): for each thread, index
``window_texts(turn_texts, 2, 2)`` as a second document per turn, in a place the turn
search does not match, with metadata naming the turn it is centred on; store for every turn
its thread key, its ordinal in the thread and its speaker, so they can be read back for the
candidates. A window longer than the chunk limit may be cut into two chunks: both map to
the same turn, which is fine. No extra embedding is needed.

Caller contract at query time, for ``rank``:

- ``keyword``: ids from the keyword engine for the chunks, best first (50 deep).
- ``window``: ids from the keyword engine for the window chunks, best first (50 deep),
  *each already mapped to the id of its centre turn* (``map_ranking`` does it). Empty when
  there is no window index; then use ``RECIPE_WITHOUT_WINDOWS``.
- ``vector``: ids from the vector search over the chunks, best first (50 deep).
- ``candidates``: for every id that occurs in any of the three rankings, a ``Candidate``
  (group = thread key, position = ordinal of the turn in its group, speaker). A missing
  id, or a field left ``None``, only switches that part of the recipe off for it.
- ``query``: the user's query text (only used to find a named speaker).

The vector search for the turns should embed ``vector_query(query, speakers)`` rather than
the raw query, ``speakers`` being the names of the speakers of the searched conversation(s)
(e.g. the speakers of the keyword candidates); other documents keep the raw query.

Ids can be any hashable values (chunk ids, document keys) as long as the four arguments
agree. The result is every candidate id with its final score, best first; deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from soloist.memory.text import rrf_fuse, words

if TYPE_CHECKING:
    from soloist.config.sections import SearchSection

__all__ = [
    "RECIPE",
    "RECIPE_WITHOUT_WINDOWS",
    "Candidate",
    "Recipe",
    "asks_for_several",
    "configured_recipes",
    "map_ranking",
    "named_speaker",
    "rank",
    "recency_boost",
    "vector_query",
    "window_text",
    "window_texts",
]

K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound=Hashable)

_WORD_CHAR = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class Candidate:
    """What the recipe needs to know about one candidate chunk besides its ranks."""

    group: Hashable | None = None
    """Session or thread key; neighbours and the session prior only act within a group."""
    position: int | None = None
    """Ordinal of the turn in its group (consecutive integers for consecutive turns; one
    candidate per position, or only one of them passes score on to its neighbours)."""
    speaker: str | None = None


@dataclass(frozen=True)
class Recipe:
    """The weights of ``rank``; the defaults are the best measured with a window index."""

    rrf_k: float = 10.0
    keyword_weight: float = 0.5
    window_weight: float = 1.0
    vector_weight: float = 0.6
    neighbour_weights: tuple[float, ...] = (0.3, 0.1)
    """Share of a candidate's score given to the candidates 1, 2, ... positions away."""
    group_weight: float = 0.2
    """Share of the best score in a candidate's group added to it."""
    other_speaker_factor: float = 0.5
    """Multiplier for turns by someone else when the query names exactly one speaker."""
    spread_for_several: bool = True
    """No neighbour propagation or thread prior for a query that asks for several things
    (``asks_for_several``): its answers lie apart, and the neighbours of the best hit would
    take their places."""

    def __post_init__(self) -> None:
        if self.rrf_k < 0:
            raise ValueError("rrf_k must be >= 0")
        if not 0.0 <= self.other_speaker_factor <= 1.0:
            raise ValueError("other_speaker_factor must be within [0, 1]")
        weights = (self.keyword_weight, self.window_weight, self.vector_weight,
                   self.group_weight, *self.neighbour_weights)
        if any(w < 0 for w in weights):
            raise ValueError("weights must be >= 0")


RECIPE = Recipe()
"""Turn keyword + window keyword + turn vector ranking."""

# Without a window index the neighbour propagation has to do the window's work, so it is
# wider and stronger; the keyword list then carries the full weight.
RECIPE_WITHOUT_WINDOWS = Recipe(keyword_weight=1.0, window_weight=0.0,
                                neighbour_weights=(0.5, 0.25))
"""Turn keyword + turn vector ranking only."""


def configured_recipes(section: SearchSection | None) -> tuple[Recipe, Recipe]:
    """``RECIPE`` and ``RECIPE_WITHOUT_WINDOWS`` with the weights of ``[memory.search]``.

    A stronger embedding model than MiniLM deserves a higher ``vector_weight`` (see
    bench/README.md). Both recipes take the same overrides.
    """
    overrides = section.overrides() if section is not None else {}
    if not overrides:
        return RECIPE, RECIPE_WITHOUT_WINDOWS
    return replace(RECIPE, **overrides), replace(RECIPE_WITHOUT_WINDOWS, **overrides)


# -- ingestion -----------------------------------------------------------------------------


def window_text(texts: Sequence[str], index: int, before: int = 2, after: int = 2,
                suffix: str = "") -> str:
    """The turn ``texts[index]`` with up to ``before``/``after`` neighbours, one string.

    ``texts`` are the turns of one session in order (each as indexed, e.g. "speaker: text",
    without per-turn dates so that a date does not count five times); ``suffix`` (e.g. the
    session date) is appended once.
    """
    if not 0 <= index < len(texts):
        raise IndexError(f"turn {index} is not within the {len(texts)} texts")
    if before < 0 or after < 0:
        raise ValueError("before and after must be >= 0")
    body = " ".join(texts[max(0, index - before):index + after + 1])
    return f"{body} {suffix}" if suffix else body


def window_texts(texts: Sequence[str], before: int = 2, after: int = 2,
                 suffix: str = "") -> list[str]:
    """``window_text`` for every turn of one session: index it as a second representation.

    Each window must be findable as belonging to its centre turn (e.g. the window document's
    metadata names the turn's key), so that its rank can be mapped with ``map_ranking``.
    """
    return [window_text(texts, i, before, after, suffix) for i in range(len(texts))]


# -- query time ----------------------------------------------------------------------------


def map_ranking(ranking: Iterable[S], to: Mapping[S, K]) -> list[K]:
    """Window-chunk ids to their centre turn ids, keeping each turn's best rank only.

    Ids without a mapping are dropped (e.g. a window whose turn has been deleted).
    """
    out: list[K] = []
    seen: set[K] = set()
    for item in ranking:
        target = to.get(item)
        if target is None or target in seen:
            continue
        seen.add(target)
        out.append(target)
    return out


def named_speaker(query: str, speakers: Iterable[str]) -> str | None:
    """The one speaker the query names (every word of the name present), else None.

    Two or more named speakers say nothing about who holds the answer, so they give None.
    """
    said = set(words(query))
    named: set[str] = set()
    for speaker in speakers:
        name = words(speaker)
        if name and all(w in said for w in name):
            named.add(speaker)
    return next(iter(named)) if len(named) == 1 else None


# Words that end in "s" without being plurals, among a question's first words.
_NOT_PLURAL = frozenset({"is", "does", "has", "was", "his", "this", "yes", "its", "hers",
                         "us", "as"})
_SEVERAL_OPENINGS = ("how many", "in what ways", "what are some")


def asks_for_several(query: str) -> bool:
    """Whether ``query`` asks for a list: "Which cities...", "What books...", "How many...".

    A plural noun among the three words after an opening "what" or "which", or one of a few
    openings that always count. A rough test by design (bench/README.md says how often it
    fires on the benchmark's questions).
    """
    text = query.strip().lower()
    if text.startswith(_SEVERAL_OPENINGS):
        return True
    tokens = re.findall(r"[\w']+", text)
    if not tokens or tokens[0] not in ("what", "which"):
        return False
    return any(w.endswith("s") and not w.endswith(("ss", "'s")) and w not in _NOT_PLURAL
               for w in tokens[1:4])


_SENTENCE_END = re.compile(r"[.!?]$")
_POSSESSIVE = r"(?:['\u2019]s)?"


def vector_query(query: str, names: Iterable[str] | None = None) -> str:
    """The query to embed for the vector search: ``query`` without people's names.

    With ``names`` (e.g. the conversation's speakers), every word of each name is removed,
    with a possessive "'s" after it, case-insensitively. Without, every capitalised word that
    does not start a sentence is removed (a rough stand-in for names). Whitespace is
    collapsed; when nothing with a letter or digit would be left, ``query`` is returned as is.
    """
    if names is None:
        kept: list[str] = []
        start = True
        for word in query.split():
            if start or not word[:1].isupper():
                kept.append(word)
            start = bool(_SENTENCE_END.search(word))
        out = " ".join(kept)
    else:
        parts = {w for name in names for w in words(name)}
        out = query
        for word in sorted(parts, key=len, reverse=True):
            out = re.sub(rf"\b{re.escape(word)}{_POSSESSIVE}(?!\w)", " ", out, flags=re.IGNORECASE)
        out = " ".join(out.split())
    return out if _WORD_CHAR.search(out) else query


def rank(keyword: Sequence[K], vector: Sequence[K], candidates: Mapping[K, Candidate],
         query: str, *, window: Sequence[K] = (), recipe: Recipe = RECIPE
         ) -> list[tuple[K, float]]:
    """Final order of the candidates, best first, with scores (see the module docstring)."""
    fused = dict(rrf_fuse([keyword, window, vector], recipe.rrf_k,
                          [recipe.keyword_weight, recipe.window_weight, recipe.vector_weight]))
    if not fused:
        return []
    # First appearance across the lists breaks ties, so equal scores keep a stable order;
    # the candidates are visited in that order too, so sums add up the same way every time.
    order = {item: i for i, item in enumerate(dict.fromkeys([*keyword, *window, *vector]))}
    none = Candidate()
    info = {item: candidates.get(item, none) for item in order if item in fused}

    # Propagation only reaches other candidates: in measurement, adding non-candidate
    # neighbours changed nothing, and it keeps the caller from reading extra chunks.
    scores = dict(fused)
    clustered = not (recipe.spread_for_several and asks_for_several(query))
    if clustered and any(recipe.neighbour_weights):
        located = {(c.group, c.position): item for item, c in info.items()
                   if c.group is not None and c.position is not None}
        for (group, position), item in located.items():
            assert position is not None
            for distance, weight in enumerate(recipe.neighbour_weights, start=1):
                for other in (position - distance, position + distance):
                    neighbour = located.get((group, other))
                    if neighbour is not None:
                        scores[neighbour] += weight * fused[item]

    if clustered and recipe.group_weight:
        best: dict[Hashable, float] = {}
        for item, c in info.items():
            if c.group is not None:
                best[c.group] = max(best.get(c.group, 0.0), scores[item])
        for item, c in info.items():
            if c.group is not None:
                scores[item] += recipe.group_weight * best[c.group]

    speakers = {c.speaker for c in info.values() if c.speaker}
    who = named_speaker(query, speakers) if len(speakers) > 1 else None
    if who is not None:
        for item, c in info.items():
            if c.speaker and c.speaker != who:
                scores[item] *= recipe.other_speaker_factor

    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def recency_boost(scores: Sequence[tuple[K, float]] | Mapping[K, float],
                  timestamps: Mapping[K, float], half_life_seconds: float, *,
                  weight: float = 1.0, now: float | None = None) -> list[tuple[K, float]]:
    """Multiply each score by 1 + weight * 0.5 ** (age / half_life) and re-rank.

    Ages are measured from `now` (default: the newest timestamp among the scored ids, so the
    result does not depend on the wall clock). Ids without a timestamp get no boost;
    future timestamps count as age 0. Ties keep the input order.
    """
    if half_life_seconds <= 0:
        raise ValueError("half_life_seconds must be positive")
    items = list(scores.items()) if isinstance(scores, Mapping) else list(scores)
    if now is None:
        known = [timestamps[item] for item, _ in items if item in timestamps]
        if not known:
            return items
        now = max(known)
    boosted: list[tuple[K, float]] = []
    for item, score in items:
        ts = timestamps.get(item)
        if ts is not None:
            score = score * (1.0 + weight * 0.5 ** (max(0.0, now - ts) / half_life_seconds))
        boosted.append((item, score))
    return sorted(boosted, key=lambda pair: -pair[1])
