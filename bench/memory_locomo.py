"""LoCoMo retrieval through Soloist's public memory API, beside a plain BM25 baseline.

Every turn of each conversation is ingested as a document (namespace ``locomo/<id>``, key
the turn's dia_id; text "speaker: text" with the image caption and the session date;
speaker, session (as the document's thread) and the turn's place in it as metadata), with
the default local embedding model; each category 1-4 question is searched within its
conversation through ``Documents.search`` (FTS5 over the turns and over each turn with its
thread neighbours, exact vectors, fused and re-ranked by ``memory/ranking.py``). Beside it,
plain BM25 over the same turns (``locomo/baseline.py``) is the baseline. No LLM call at
ingestion or query time. The data is read from ../shared/data/locomo (CC BY-NC, never
copied into the repository).

    python bench/memory_locomo.py [--data PATH] [--json] [--no-vectors] [--config TOML]

``--config`` takes a ``soloist.toml`` (or any TOML file) and uses its
``[memory.embeddings]`` and ``[memory.search]`` tables instead of the defaults: the way to
measure another embedding model, e.g. one exported to ONNX (``provider = "onnx"``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from locomo.baseline import retriever_search
from locomo.data import Conversation, evaluate, load, turn_text

from soloist.config import parse_table
from soloist.config.sections import SearchSection
from soloist.errors import ConfigError
from soloist.memory.documents import Documents
from soloist.memory.facts import Cause
from soloist.memory.ranking import configured_recipes
from soloist.store.sqlite.backend import SQLiteStore

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / \
    "locomo-dev.json"
GOALS = {"recall_any@10": 0.85, "multihop_recall_all@10": 0.40}


def soloist_search(conversations: list[Conversation], vectors: bool,
                   memory: dict[str, Any]) -> tuple[Any, float]:
    root = Path(tempfile.mkdtemp(prefix="soloist-locomo-"))
    store = SQLiteStore(root / "state.db")
    embedder = None
    if vectors:
        from soloist.memory.embeddings import embedder_from_config, parse_embeddings_config

        embedder = embedder_from_config(parse_embeddings_config(memory.get("embeddings")))
    search = parse_table(SearchSection, memory.get("search"), "memory.search")
    docs = Documents(store, embedder, recipes=configured_recipes(search))
    cause = Cause("bench:locomo", "ingest the conversation")
    started = time.perf_counter()
    for conv in conversations:
        # Each session is a thread; a turn's place in it lets the memory index the turn
        # with its neighbours and rank turns next to strong hits higher.
        place: dict[int, int] = {}
        items = []
        for turn in conv.turns:
            position = place[turn.session] = place.get(turn.session, -1) + 1
            items.append((f"locomo/{conv.sample_id}", turn.dia_id, turn_text(turn, date=True),
                          {"speaker": turn.speaker, "thread": f"session {turn.session}",
                           "position": position, "session_date": turn.session_date,
                           "caption": turn.blip_caption}))
        docs.add_many(items, cause)
    ingest_s = time.perf_counter() - started

    def search(conv_id: str, question: str, k: int) -> list[str]:
        return [h.chunk.doc_key for h in docs.search(question, f"locomo/{conv_id}", k)]

    return search, ingest_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-vectors", action="store_true",
                        help="keyword only (to see what the vectors add)")
    parser.add_argument("--config", type=Path, default=None,
                        help="a TOML file whose [memory.embeddings] and [memory.search] "
                             "tables replace the defaults")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"error: no LoCoMo file at {args.data}; pass --data PATH")
    memory: dict[str, Any] = {}
    if args.config is not None:
        try:
            memory = tomllib.loads(args.config.read_text()).get("memory", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            sys.exit(f"error: cannot read {args.config}: {exc}")
    conversations = load(args.data)
    turns = sum(len(c.turns) for c in conversations)

    t0 = time.perf_counter()
    try:
        ours_search, ingest_s = soloist_search(conversations, not args.no_vectors, memory)
    except ConfigError as exc:
        sys.exit(f"error: {args.config}: {exc}")
    ours = evaluate(conversations, ours_search)
    ours_s = time.perf_counter() - t0
    bm25 = evaluate(conversations, retriever_search(conversations))

    def multihop(result: dict[str, Any], key: str) -> float:
        return float(result["by_category"][1][key])

    figures = {
        "questions": ours["n"],
        "turns": turns,
        "recall_any@5": ours["recall_any@5"],
        "recall_any@10": ours["recall_any@10"],
        "recall_all@10": ours["recall_all@10"],
        "ndcg@10": ours["ndcg@10"],
        "multihop_recall_all@10": multihop(ours, "recall_all@10"),
        "bm25_recall_any@10": bm25["recall_any@10"],
        "bm25_recall_all@10": bm25["recall_all@10"],
        "bm25_ndcg@10": bm25["ndcg@10"],
        "bm25_multihop_recall_all@10": multihop(bm25, "recall_all@10"),
        "vectors": not args.no_vectors,
        "embedder": memory.get("embeddings", {}).get("name") or
        memory.get("embeddings", {}).get("model") or "all-MiniLM-L6-v2-int8",
        "search_settings": memory.get("search", {}),
        "ingest_turns_per_s": turns / ingest_s,
        "seconds": ours_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "by_category": {c: {k: v for k, v in d.items() if k != "name"}
                        for c, d in ours["by_category"].items()},
    }
    rows = [("recall_any@5", None), ("recall_any@10", "bm25_recall_any@10"),
            ("recall_all@10", "bm25_recall_all@10"), ("ndcg@10", "bm25_ndcg@10"),
            ("multihop_recall_all@10", "bm25_multihop_recall_all@10")]
    print(f"{'figure':<26} {'soloist':>8} {'BM25':>8} {'ratio':>7}  goal")
    for key, base in rows:
        ours_v = figures[key]
        base_v = figures[base] if base else None
        ratio = f"{ours_v / base_v:.2f}x" if base_v else ""
        goal = GOALS.get(key)
        verdict = "" if goal is None else f">= {goal}  {'PASS' if ours_v >= goal else 'FAIL'}"
        base_text = f"{base_v:.3f}" if base_v is not None else ""
        print(f"{key:<26} {ours_v:>8.3f} {base_text:>8} {ratio:>7}  {verdict}")
    for category, d in ours["by_category"].items():
        print(f"  category {category} ({d['name']}, n={d['n']}): recall_any@10 "
              f"{d['recall_any@10']:.3f}, recall_all@10 {d['recall_all@10']:.3f}")
    print(f"{figures['questions']} questions over {turns} turns; ingestion "
          f"{figures['ingest_turns_per_s']:.0f} turns/s with embeddings from "
          f"{figures['embedder']}; no LLM call")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
