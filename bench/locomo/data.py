"""LoCoMo (Maharana et al., ACL 2024) loader and retrieval-only scorer.

The data is CC BY-NC 4.0: it is read from outside the repository at benchmark time and never
copied into it. Format (see ../shared/data/locomo/README.md): a JSON list of conversations;
conversation.session_N is a list of turns {speaker, dia_id "D<session>:<turn>", text,
blip_caption?}, conversation.session_N_date_time is that session's date; qa[] holds
{question, answer | adversarial_answer, evidence: [dia_id...], category}.

Retrieval metric: for each QA item of categories 1-4 with evidence, retrieve the top k turns
of its conversation for the question and score against the evidence turns (recall_any@k,
recall_all@k, nDCG@k with binary relevance). Category 5 (adversarial) is left out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CATEGORIES",
    "QA",
    "Conversation",
    "Search",
    "Turn",
    "evaluate",
    "load",
    "normalise_dia_id",
    "parse_evidence",
    "score",
    "turn_text",
]

CATEGORIES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
SCORED_CATEGORIES = (1, 2, 3, 4)

_EVIDENCE = re.compile(r"D:?(\d+):0*(\d+)")
_SPLIT = re.compile(r"[;,\s]+")
_SESSION = re.compile(r"session_(\d+)")

Search = Callable[[str, str, int], list[str]]
"""search(conversation_id, question, k) -> dia_ids, best first."""


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    session: int
    session_date: str
    blip_caption: str | None = None


@dataclass(frozen=True)
class QA:
    question: str
    answer: str | None
    category: int
    evidence: frozenset[str]
    raw_evidence: tuple[str, ...] = ()
    adversarial_answer: str | None = None


@dataclass
class Conversation:
    sample_id: str
    speaker_a: str
    speaker_b: str
    turns: list[Turn]
    qa: list[QA]
    session_dates: dict[int, str] = field(default_factory=dict)

    def turn(self, dia_id: str) -> Turn | None:
        wanted = normalise_dia_id(dia_id)
        for t in self.turns:
            if t.dia_id == wanted:
                return t
        return None


def normalise_dia_id(text: str) -> str | None:
    """'D3:07' or 'D:3:7' -> 'D3:7'; None when it is not a dialogue id."""
    match = _EVIDENCE.fullmatch(text.strip())
    if match is None:
        return None
    return f"D{int(match.group(1))}:{int(match.group(2))}"


def parse_evidence(items: Iterable[str]) -> frozenset[str]:
    """Evidence ids, normalised; tolerant of 'D8:6; D9:17', 'D:11:26', 'D30:05', junk.

    Each item is split on ';', ',' and whitespace and every piece is read as D:?(\\d+):0*(\\d+);
    pieces that do not match (e.g. a bare 'D') are dropped.
    """
    out: set[str] = set()
    for item in items:
        for piece in _SPLIT.split(str(item)):
            if not piece:
                continue
            dia_id = normalise_dia_id(piece)
            if dia_id is not None:
                out.add(dia_id)
    return frozenset(out)


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    return str(value)


def _conversation(raw: dict[str, Any], position: int) -> Conversation:
    body: dict[str, Any] = raw.get("conversation", {})
    sessions: list[int] = sorted(
        int(m.group(1)) for key in body if (m := _SESSION.fullmatch(key)) is not None)
    dates = {n: str(body.get(f"session_{n}_date_time", "")) for n in sessions}
    turns: list[Turn] = []
    for n in sessions:
        for item in body[f"session_{n}"] or []:
            dia_id = normalise_dia_id(str(item.get("dia_id", ""))) or str(item.get("dia_id"))
            caption = item.get("blip_caption")
            turns.append(Turn(dia_id=dia_id, speaker=str(item.get("speaker", "")),
                              text=str(item.get("text", "")), session=n,
                              session_date=dates[n],
                              blip_caption=str(caption) if caption else None))
    qa: list[QA] = []
    for item in raw.get("qa", []):
        raw_evidence = tuple(str(e) for e in item.get("evidence") or [])
        qa.append(QA(question=str(item.get("question", "")),
                     answer=_opt_str(item.get("answer")),
                     category=int(item.get("category", 0)),
                     evidence=parse_evidence(raw_evidence),
                     raw_evidence=raw_evidence,
                     adversarial_answer=_opt_str(item.get("adversarial_answer"))))
    return Conversation(sample_id=str(raw.get("sample_id", f"conv-{position}")),
                        speaker_a=str(body.get("speaker_a", "")),
                        speaker_b=str(body.get("speaker_b", "")),
                        turns=turns, qa=qa, session_dates=dates)


def load(path: str | Path) -> list[Conversation]:
    """Read a LoCoMo JSON file (a list of conversations); sessions and turns in order."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of conversations")
    return [_conversation(raw, i) for i, raw in enumerate(data)]


def score(retrieved_ids: Sequence[str], evidence: set[str] | frozenset[str], k: int
          ) -> tuple[float, float, float]:
    """(recall_any@k, recall_all@k, nDCG@k) with binary relevance.

    Retrieved ids are normalised and de-duplicated (a repeat counts once, at its first rank).
    IDCG puts min(|evidence|, k) relevant items at the top. No evidence scores (0, 0, 0).
    """
    if k <= 0:
        raise ValueError("k must be positive")
    wanted = {normalise_dia_id(e) or e for e in evidence}
    if not wanted:
        return 0.0, 0.0, 0.0
    top: list[str] = []
    seen: set[str] = set()
    for raw in retrieved_ids:
        dia_id = normalise_dia_id(raw) or raw
        if dia_id in seen:
            continue
        seen.add(dia_id)
        top.append(dia_id)
        if len(top) == k:
            break
    found = [i for i, dia_id in enumerate(top) if dia_id in wanted]
    recall_any = 1.0 if found else 0.0
    recall_all = 1.0 if len(found) == len(wanted) else 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i in found)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), k)))
    return recall_any, recall_all, dcg / idcg


def _metric_names(ks: Sequence[int]) -> list[str]:
    return [f"{name}@{k}" for k in ks for name in ("recall_any", "recall_all", "ndcg")]


def _average(sums: dict[str, float], n: int, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {name: (sums.get(name, 0.0) / n if n else 0.0) for name in names}
    out["n"] = n
    return out


def evaluate(conversations: Iterable[Conversation], search: Search,
             ks: Sequence[int] = (5, 10)) -> dict[str, Any]:
    """Score `search` on every QA item of categories 1-4 that has evidence.

    `search` is called once per item with k = max(ks). Returns the overall means under
    "recall_any@k", "recall_all@k", "ndcg@k" for each k, "n" (items scored), "skipped"
    (category 1-4 items without usable evidence), and "by_category": {1..4: same metric keys
    plus "n" and "name"}.
    """
    ks = sorted(set(ks))
    if not ks or ks[0] <= 0:
        raise ValueError("ks must be positive")
    depth = ks[-1]
    names = _metric_names(ks)
    totals: dict[str, float] = {}
    per_cat: dict[int, dict[str, float]] = {c: {} for c in SCORED_CATEGORIES}
    counts: dict[int, int] = dict.fromkeys(SCORED_CATEGORIES, 0)
    skipped = 0
    for conv in conversations:
        for item in conv.qa:
            if item.category not in SCORED_CATEGORIES:
                continue
            if not item.evidence:
                skipped += 1
                continue
            retrieved = search(conv.sample_id, item.question, depth)
            counts[item.category] += 1
            for k in ks:
                values = score(retrieved, item.evidence, k)
                for name, value in zip(("recall_any", "recall_all", "ndcg"), values,
                                       strict=True):
                    key = f"{name}@{k}"
                    totals[key] = totals.get(key, 0.0) + value
                    cat = per_cat[item.category]
                    cat[key] = cat.get(key, 0.0) + value
    n = sum(counts.values())
    result = _average(totals, n, names)
    result["skipped"] = skipped
    by_category: dict[int, dict[str, Any]] = {}
    for c in SCORED_CATEGORIES:
        entry = _average(per_cat[c], counts[c], names)
        entry["name"] = CATEGORIES[c]
        by_category[c] = entry
    result["by_category"] = by_category
    return result


def turn_text(turn: Turn, *, caption: bool = True, date: bool = False) -> str:
    """The memory text of a turn: "speaker: text", plus the image caption and session date."""
    parts = [f"{turn.speaker}: {turn.text}"]
    if caption and turn.blip_caption:
        parts.append(f"[image: {turn.blip_caption}]")
    if date and turn.session_date:
        parts.append(f"({turn.session_date})")
    return " ".join(parts)
