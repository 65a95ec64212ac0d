"""LoCoMo loader and scorer, on a small synthetic conversation (never the real data)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from locomo import data
from locomo.baseline import retriever_search
from locomo.data import evaluate, load, normalise_dia_id, parse_evidence, score, turn_text


def synthetic() -> list[dict[str, Any]]:
    return [{
        "sample_id": "syn-1",
        "conversation": {
            "speaker_a": "Ada",
            "speaker_b": "Bo",
            "session_1_date_time": "9:00 am on 1 March, 2024",
            "session_1": [
                {"speaker": "Ada", "dia_id": "D1:1",
                 "text": "I adopted a grey kitten called Pixel."},
                {"speaker": "Bo", "dia_id": "D1:2",
                 "text": "Lovely! I started learning the cello."},
                {"speaker": "Ada", "dia_id": "D1:3", "text": "Here is Pixel asleep.",
                 "blip_caption": "a photo of a cat sleeping on a sofa"},
            ],
            "session_2_date_time": "6:30 pm on 9 March, 2024",
            "session_2": [
                {"speaker": "Bo", "dia_id": "D2:1", "text": "My cello recital is next Friday."},
                {"speaker": "Ada", "dia_id": "D2:2", "text": "I will bring flowers to it."},
            ],
            "session_3_date_time": "8:15 am on 20 March, 2024",
            "session_3": [
                {"speaker": "Ada", "dia_id": "D3:1", "text": "Pixel knocked over my coffee."},
                {"speaker": "Bo", "dia_id": "D3:2",
                 "text": "The recital went well, I played Bach."},
            ],
            "session_10_date_time": "noon on 2 April, 2024",
            "session_10": [
                {"speaker": "Bo", "dia_id": "D10:01", "text": "Thinking of a second instrument."},
            ],
        },
        "qa": [
            {"question": "What is the name of Ada's kitten?", "answer": "Pixel",
             "evidence": ["D1:1"], "category": 4},
            {"question": "Which composer did Bo play at the cello recital?", "answer": "Bach",
             "evidence": ["D2:1; D3:2"], "category": 1},
            {"question": "When did Bo start the cello?", "answer": 2024,
             "evidence": ["D:1:02"], "category": 2},
            {"question": "Does Ada like animals?", "answer": "Likely yes", "evidence": [],
             "category": 3},
            {"question": "What did Bo's kitten knock over?", "adversarial_answer": "coffee",
             "evidence": ["D3:1"], "category": 5},
            {"question": "What might Bo learn next?", "answer": "another instrument",
             "evidence": ["D10:1", "D"], "category": 3},
        ],
    }]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-synthetic.json"
    path.write_text(json.dumps(synthetic()), encoding="utf-8")
    return path


def test_load_reads_turns_sessions_and_qa(data_file: Path) -> None:
    [conv] = load(data_file)
    assert conv.sample_id == "syn-1"
    assert (conv.speaker_a, conv.speaker_b) == ("Ada", "Bo")
    assert [t.dia_id for t in conv.turns] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2", "D3:1",
                                              "D3:2", "D10:1"]  # sessions in numeric order
    caption = conv.turns[2]
    assert caption.blip_caption == "a photo of a cat sleeping on a sofa"
    assert caption.session == 1 and caption.session_date == "9:00 am on 1 March, 2024"
    assert conv.turns[0].blip_caption is None
    assert conv.session_dates[10] == "noon on 2 April, 2024"
    assert conv.turn("D10:01") is conv.turns[-1]
    assert conv.turn("D9:9") is None
    assert len(conv.qa) == 6
    assert conv.qa[1].evidence == {"D2:1", "D3:2"}
    assert conv.qa[1].raw_evidence == ("D2:1; D3:2",)
    assert conv.qa[2].answer == "2024"
    assert conv.qa[4].answer is None and conv.qa[4].adversarial_answer == "coffee"


def test_load_rejects_a_non_list(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError):
        load(path)


def test_evidence_parsing_tolerates_malformed_ids() -> None:
    assert parse_evidence(["D8:6; D9:17"]) == {"D8:6", "D9:17"}
    assert parse_evidence(["D:11:26"]) == {"D11:26"}
    assert parse_evidence(["D30:05"]) == {"D30:5"}
    assert parse_evidence(["D1:2,D1:3 D1:4"]) == {"D1:2", "D1:3", "D1:4"}
    assert parse_evidence(["D", "", "turn 4"]) == set()
    assert normalise_dia_id("D3:07") == "D3:7"
    assert normalise_dia_id("X3:7") is None


def test_score_hand_computed() -> None:
    evidence = {"D1:1", "D2:2"}
    ranked = ["D9:9", "D1:1", "D5:5", "D2:02"]
    any2, all2, ndcg2 = score(ranked, evidence, k=2)
    assert (any2, all2) == (1.0, 0.0)
    assert ndcg2 == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    any4, all4, ndcg4 = score(ranked, evidence, k=4)
    assert (any4, all4) == (1.0, 1.0)
    assert ndcg4 == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert score(["D1:1", "D2:2"], evidence, k=10) == pytest.approx((1.0, 1.0, 1.0))
    assert score(["D7:7"], evidence, k=10) == (0.0, 0.0, 0.0)
    assert score(["D1:1"], set(), k=10) == (0.0, 0.0, 0.0)


def test_score_counts_a_repeated_id_once_and_caps_idcg_at_k() -> None:
    # duplicates do not use up the top k nor double-count gain
    assert score(["D1:1", "D1:1", "D2:2"], {"D1:1", "D2:2"}, k=2)[1] == 1.0
    # three evidence turns, k=1: a perfect top-1 has nDCG 1 but recall_all 0
    assert score(["D1:1"], {"D1:1", "D2:2", "D3:3"}, k=1) == pytest.approx((1.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        score([], {"D1:1"}, k=0)


def test_evaluate_aggregates_overall_and_per_category(data_file: Path) -> None:
    conversations = load(data_file)
    answers = {
        "What is the name of Ada's kitten?": ["D1:1"],                  # cat 4: perfect
        "Which composer did Bo play at the cello recital?": ["D3:2"],   # cat 1: one of two
        "When did Bo start the cello?": ["D9:9"] * 3 + ["D1:2"],        # cat 2: found at rank 2
        "What might Bo learn next?": [],                                  # cat 3: miss
    }
    calls: list[tuple[str, int]] = []

    def search(conv_id: str, question: str, k: int) -> list[str]:
        calls.append((conv_id, k))
        return answers[question]

    result = evaluate(conversations, search, ks=(1, 2))
    # category 5 and the item without evidence are not searched
    assert calls == [("syn-1", 2)] * 4
    assert result["n"] == 4 and result["skipped"] == 1
    assert result["recall_any@1"] == pytest.approx(2 / 4)
    assert result["recall_all@1"] == pytest.approx(1 / 4)
    # D9:9 repeated counts once, so D1:2 is rank 2
    assert result["recall_any@2"] == pytest.approx(3 / 4)
    assert result["recall_all@2"] == pytest.approx(2 / 4)
    by_cat = result["by_category"]
    assert set(by_cat) == {1, 2, 3, 4}
    assert by_cat[1]["name"] == "multi-hop" and by_cat[1]["n"] == 1
    assert by_cat[1]["recall_any@2"] == 1.0 and by_cat[1]["recall_all@2"] == 0.0
    assert by_cat[1]["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert by_cat[2]["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert by_cat[3]["recall_any@2"] == 0.0
    assert by_cat[4]["ndcg@1"] == 1.0


def test_evaluate_with_no_items_is_all_zero() -> None:
    result = evaluate([], lambda c, q, k: [], ks=(10,))
    assert result["n"] == 0 and result["recall_any@10"] == 0.0
    assert result["by_category"][4]["n"] == 0
    with pytest.raises(ValueError):
        evaluate([], lambda c, q, k: [], ks=())


def test_turn_text_and_bm25_baseline_end_to_end(data_file: Path) -> None:
    conversations = load(data_file)
    pic = conversations[0].turns[2]
    assert turn_text(pic) == (
        "Ada: Here is Pixel asleep. [image: a photo of a cat sleeping on a sofa]")
    assert turn_text(pic, caption=False, date=True) == (
        "Ada: Here is Pixel asleep. (9:00 am on 1 March, 2024)")
    search = retriever_search(conversations)
    assert search("syn-1", "Which composer did Bo play at the recital?", 3)[0] == "D3:2"
    assert search("syn-1", "cat sleeping on the sofa", 1) == ["D1:3"]  # found by its caption
    result = evaluate(conversations, search, ks=(5,))
    assert result["by_category"][4]["recall_any@5"] == 1.0
    assert result["by_category"][1]["recall_all@5"] == 1.0


def test_categories_match_the_readme() -> None:
    assert data.CATEGORIES[1] == "multi-hop" and data.SCORED_CATEGORIES == (1, 2, 3, 4)
