from __future__ import annotations

import re
from dataclasses import replace

import pytest

from soloist.memory.ranking import (
    RECIPE,
    RECIPE_WITHOUT_WINDOWS,
    Candidate,
    Recipe,
    map_ranking,
    named_speaker,
    rank,
    recency_boost,
    vector_query,
    window_text,
    window_texts,
)

PLAIN = Recipe(neighbour_weights=(), group_weight=0.0, other_speaker_factor=1.0)

# Two sessions of a dialogue between Ann and Bob; ids are "session:position".
TURNS = {
    "1:0": Candidate("s1", 0, "Ann"),
    "1:1": Candidate("s1", 1, "Bob"),
    "1:2": Candidate("s1", 2, "Ann"),
    "1:3": Candidate("s1", 3, "Bob"),
    "2:0": Candidate("s2", 0, "Ann"),
    "2:1": Candidate("s2", 1, "Bob"),
}


def ids(result: list[tuple[str, float]]) -> list[str]:
    return [item for item, _ in result]


def test_window_text_stays_within_the_given_turns() -> None:
    texts = ["a: one", "b: two", "a: three", "b: four"]
    assert window_text(texts, 0) == "a: one b: two a: three"
    assert window_text(texts, 3, before=1, after=1) == "a: three b: four"
    assert window_text(texts, 1, 0, 0, suffix="(8 May 2023)") == "b: two (8 May 2023)"


def test_window_texts_one_per_turn() -> None:
    texts = ["x", "y", "z"]
    assert window_texts(texts, 1, 1) == ["x y", "x y z", "y z"]
    assert window_texts([]) == []


def test_window_text_rejects_bad_arguments() -> None:
    with pytest.raises(IndexError):
        window_text(["x"], 1)
    with pytest.raises(ValueError):
        window_text(["x"], 0, before=-1)


def test_map_ranking_keeps_the_best_rank_per_turn_and_drops_unknown() -> None:
    to = {"w1": "t1", "w2": "t2", "w1b": "t1"}
    assert map_ranking(["w2", "gone", "w1", "w1b"], to) == ["t2", "t1"]


def test_named_speaker() -> None:
    speakers = ["Ann", "Bob", "Mary Jane"]
    assert named_speaker("What did Ann's sister paint?", speakers) == "Ann"
    assert named_speaker("When did ann go hiking?", speakers) == "Ann"
    assert named_speaker("Did Ann and Bob meet?", speakers) is None
    assert named_speaker("Where does Mary Jane live?", speakers) == "Mary Jane"
    assert named_speaker("Where does Mary live?", speakers) is None
    assert named_speaker("Annual report?", speakers) is None


def test_plain_fusion_is_weighted_rrf() -> None:
    result = rank(["a", "b"], ["b", "c"], {}, "q", window=["c"],
                  recipe=Recipe(rrf_k=10, keyword_weight=1.0, window_weight=1.0,
                                vector_weight=1.0, neighbour_weights=(), group_weight=0.0))
    scores = dict(result)
    assert scores["a"] == pytest.approx(1 / 11)
    assert scores["b"] == pytest.approx(1 / 12 + 1 / 11)
    assert scores["c"] == pytest.approx(1 / 11 + 1 / 12)
    # b and c tie: the first to appear in keyword, window, vector order comes first
    assert ids(result) == ["b", "c", "a"]


def test_empty_rankings_give_nothing() -> None:
    assert rank([], [], TURNS, "anything") == []


def test_a_repeated_id_counts_once_at_its_first_rank() -> None:
    once = dict(rank(["a", "b"], [], {}, "q", recipe=PLAIN))
    twice = dict(rank(["a", "b", "a"], [], {}, "q", recipe=PLAIN))
    assert once == twice


def test_the_window_list_lifts_a_turn_the_turn_list_misses() -> None:
    keyword = ["1:0", "2:0", "2:1"]
    vector = ["2:0", "1:0", "2:1"]
    without = ids(rank(keyword, vector, TURNS, "q", recipe=PLAIN))
    assert "1:1" not in without
    with_window = ids(rank(keyword, vector, TURNS, "q", window=["1:1", "1:2"],
                           recipe=PLAIN))
    # first in the window list alone beats third in both turn lists
    assert with_window.index("1:1") < with_window.index("2:1")


def test_other_speakers_are_demoted_when_the_query_names_one() -> None:
    keyword = ["1:1", "1:0"]
    plain_scores = rank(keyword, [], TURNS, "What did Ann paint?", recipe=PLAIN)
    plain = ids(plain_scores)
    assert plain == ["1:1", "1:0"]
    recipe = Recipe(neighbour_weights=(), group_weight=0.0, other_speaker_factor=0.5)
    named = rank(keyword, [], TURNS, "What did Ann paint?", recipe=recipe)
    assert ids(named) == ["1:0", "1:1"]
    assert dict(named)["1:1"] == pytest.approx(0.5 * dict(plain_scores)["1:1"])
    # both speakers named, or none: no prior
    assert ids(rank(keyword, [], TURNS, "Did Ann see Bob?", recipe=recipe)) == plain
    assert ids(rank(keyword, [], TURNS, "What was painted?", recipe=recipe)) == plain


def test_turns_without_a_speaker_are_not_demoted() -> None:
    candidates = {"a": Candidate(speaker="Ann"), "b": Candidate(speaker="Bob"),
                  "note": Candidate()}
    recipe = Recipe(neighbour_weights=(), group_weight=0.0, other_speaker_factor=0.0)
    result = dict(rank(["note", "b", "a"], [], candidates, "Ann?", recipe=recipe))
    assert result["b"] == 0.0
    assert result["note"] > result["a"] > 0.0


def test_neighbours_share_score_within_a_group_only() -> None:
    recipe = Recipe(rrf_k=0, keyword_weight=1.0, window_weight=0.0, vector_weight=0.0,
                    neighbour_weights=(0.5, 0.25), group_weight=0.0,
                    other_speaker_factor=1.0)
    # 1:3 (s1, 3) and 2:0 (s2, 0) are adjacent ids but not in the same session
    result = dict(rank(["1:1", "1:3", "2:0", "1:2"], [], TURNS, "q", recipe=recipe))
    fused = {"1:1": 1.0, "1:3": 1 / 2, "2:0": 1 / 3, "1:2": 1 / 4}
    assert result["1:1"] == pytest.approx(fused["1:1"] + 0.5 * fused["1:2"]
                                          + 0.25 * fused["1:3"])
    assert result["1:2"] == pytest.approx(fused["1:2"] + 0.5 * (fused["1:1"] + fused["1:3"]))
    assert result["1:3"] == pytest.approx(fused["1:3"] + 0.5 * fused["1:2"]
                                          + 0.25 * fused["1:1"])
    assert result["2:0"] == pytest.approx(fused["2:0"])


def test_neighbours_never_add_candidates() -> None:
    result = rank(["1:1"], [], TURNS, "q", recipe=RECIPE)
    assert ids(result) == ["1:1"]


def test_the_group_prior_lifts_turns_of_the_best_session() -> None:
    recipe = Recipe(rrf_k=0, keyword_weight=1.0, window_weight=0.0, vector_weight=0.0,
                    neighbour_weights=(), group_weight=1.0, other_speaker_factor=1.0)
    # ranks: 1:0 first (s1), then 2:0, 2:1 (s2), then 1:3 (s1)
    result = dict(rank(["1:0", "2:0", "2:1", "1:3"], [], TURNS, "q", recipe=recipe))
    assert result["1:3"] == pytest.approx(1 / 4 + 1.0)
    assert result["2:1"] == pytest.approx(1 / 3 + 1 / 2)
    assert result["1:3"] > result["2:0"]


@pytest.mark.parametrize(("query", "several"), [
    ("Which invoices are overdue?", True),
    ("What plans does Acme buy?", True),
    ("What new features has the team shipped?", True),
    ("How many times did the build fail?", True),
    ("In what ways is the team helping?", True),
    ("What are some risks?", True),
    ("What is Acme's address?", False),
    ("What does Ada do on Mondays?", False),
    ("When did Bob send the invoices?", False),
    ("Where has the team met?", False),
    ("What class did Ada take?", False),
    ("", False),
])
def test_asks_for_several(query: str, several: bool) -> None:
    from soloist.memory.ranking import asks_for_several

    assert asks_for_several(query) is several


def test_a_query_for_several_things_is_ranked_without_neighbours_or_group_prior() -> None:
    recipe = Recipe(rrf_k=0, keyword_weight=1.0, window_weight=0.0, vector_weight=0.0,
                    neighbour_weights=(0.5,), group_weight=1.0, other_speaker_factor=1.0)
    ranking = ["1:1", "1:3", "2:0", "1:2"]
    plain = {"1:1": 1.0, "1:3": 1 / 2, "2:0": 1 / 3, "1:2": 1 / 4}
    several = dict(rank(ranking, [], TURNS, "Which hobbies are there?", recipe=recipe))
    assert several == pytest.approx(plain)
    one = dict(rank(ranking, [], TURNS, "Where is the hobby?", recipe=recipe))
    assert one["1:2"] > plain["1:2"]
    kept = dict(rank(ranking, [], TURNS, "Which hobbies are there?",
                     recipe=replace(recipe, spread_for_several=False)))
    assert kept == pytest.approx(one)


def test_ids_missing_from_candidates_still_rank() -> None:
    result = ids(rank(["x", "1:0"], ["1:1"], {"1:0": TURNS["1:0"]}, "Ann?"))
    assert set(result) == {"x", "1:0", "1:1"}


def test_integer_ids_work() -> None:
    candidates = {1: Candidate("s", 0, "Ann"), 2: Candidate("s", 1, "Bob")}
    result = rank([2, 1], [1], candidates, "What did Ann say?")
    assert [item for item, _ in result] == [1, 2]


def test_rank_is_deterministic() -> None:
    keyword = ["1:2", "2:1", "1:0", "2:0"]
    vector = ["2:0", "1:3", "1:2"]
    first = rank(keyword, vector, TURNS, "What did Bob do?", window=["1:1", "2:1"])
    for _ in range(3):
        assert rank(keyword, vector, TURNS, "What did Bob do?", window=["1:1", "2:1"]) == first
    scores = [score for _, score in first]
    assert scores == sorted(scores, reverse=True)


def test_recipes_are_valid_and_validated() -> None:
    assert RECIPE.window_weight > 0
    assert RECIPE_WITHOUT_WINDOWS.window_weight == 0
    with pytest.raises(ValueError):
        Recipe(rrf_k=-1)
    with pytest.raises(ValueError):
        Recipe(other_speaker_factor=1.5)
    with pytest.raises(ValueError):
        Recipe(neighbour_weights=(-0.1,))


def test_vector_query_drops_the_given_names_and_their_possessive() -> None:
    assert vector_query("What is Ada's role?", ["Ada", "Bob"]) == "What is role?"
    assert vector_query("When did ann and BOB meet?", ["Ann Lee", "Bob"]) == \
        "When did and meet?"
    assert vector_query("Where did Annabel go?", ["Ann"]) == "Where did Annabel go?"
    assert vector_query("What did Jon\u2019s dog eat?", ["Jon"]) == "What did dog eat?"


def test_vector_query_without_names_drops_capitalised_words_inside_sentences() -> None:
    assert vector_query("Which offices have both Ada and Bob visited?") == \
        "Which offices have both and visited?"
    assert vector_query("Did Ann call. Then Bob left") == "Did call. Then left"


def test_vector_query_keeps_the_query_when_nothing_would_be_left() -> None:
    assert vector_query("Ada?", ["Ada"]) == "Ada?"
    assert vector_query("Hi Ann") == "Hi"
    assert vector_query("", ["Ann"]) == ""
    assert vector_query("plain words", []) == "plain words"


def test_configured_recipes_override_both_recipes_alike() -> None:
    from soloist.config import parse_table
    from soloist.config.sections import SearchSection
    from soloist.memory.ranking import RECIPE, RECIPE_WITHOUT_WINDOWS, configured_recipes

    assert configured_recipes(None) == (RECIPE, RECIPE_WITHOUT_WINDOWS)
    assert configured_recipes(SearchSection()) == (RECIPE, RECIPE_WITHOUT_WINDOWS)
    with_windows, without = configured_recipes(parse_table(
        SearchSection, {"vector_weight": 3, "neighbour_weights": [0.1]}, "memory.search"))
    assert with_windows.vector_weight == without.vector_weight == 3.0
    assert with_windows.neighbour_weights == without.neighbour_weights == (0.1,)
    assert with_windows.window_weight == RECIPE.window_weight
    assert without.keyword_weight == RECIPE_WITHOUT_WINDOWS.keyword_weight


@pytest.mark.parametrize(("section", "message"), [
    ({"vector_wieght": 2},
     "unknown key vector_wieght in [memory.search]; did you mean vector_weight?"),
    ({"vector_weight": "high"}, '[memory.search] vector_weight must be a number, not "high"'),
    ({"vector_weight": True}, "[memory.search] vector_weight must be a number, not true"),
    ({"neighbour_weights": 0.3}, "[memory.search] neighbour_weights must be a list, not 0.3"),
    ({"neighbour_weights": [0.3, "x"]},
     '[memory.search] neighbour_weights[1] must be a number, not "x"'),
    ({"vector_weight": -1}, "[memory.search] vector_weight must be at least 0, not -1"),
    ({"other_speaker_factor": 2},
     "[memory.search] other_speaker_factor must be at most 1, not 2"),
    ({"spread_for_several": 1}, "[memory.search] spread_for_several must be true or false"),
])
def test_bad_search_settings_are_refused_in_one_sentence(section: dict[str, object],
                                                         message: str) -> None:
    from soloist.config import parse_table
    from soloist.config.sections import SearchSection
    from soloist.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_table(SearchSection, section, "memory.search")


def test_the_search_table_names_every_weight_of_the_recipe() -> None:
    from dataclasses import fields

    from soloist.config.sections import SearchSection
    from soloist.memory.ranking import Recipe

    assert set(SearchSection.model_fields) == {f.name for f in fields(Recipe)}


def test_recency_boost_halves_per_half_life() -> None:
    scores = [("old", 1.0), ("new", 0.8), ("undated", 0.9)]
    stamps = {"old": 0.0, "new": 100.0}
    boosted = recency_boost(scores, stamps, half_life_seconds=100.0)
    assert dict(boosted) == pytest.approx({"old": 1.5, "new": 1.6, "undated": 0.9})
    assert [d for d, _ in boosted] == ["new", "old", "undated"]
    later = recency_boost({"old": 1.0}, stamps, 100.0, now=300.0, weight=2.0)
    assert [d for d, _ in later] == ["old"]
    assert later[0][1] == pytest.approx(1.0 * (1 + 2.0 * 0.5**3))
    assert recency_boost(scores, {}, 10.0) == scores
    with pytest.raises(ValueError):
        recency_boost(scores, stamps, 0.0)
