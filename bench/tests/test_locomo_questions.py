"""The search's query heuristics on questions of the benchmark itself (LoCoMo dev).

Pinned here so that a change to them shows in the bench tests before it shows in the
figures; the product's own tests (tests/unit/test_ranking.py) use questions of their own.
"""

from __future__ import annotations

import pytest

from soloist.memory.ranking import asks_for_several, vector_query


@pytest.mark.parametrize(("query", "several"), [
    ("Which cities has John been to?", True),
    ("What books has Melanie read?", True),
    ("What LGBTQ+ events has Caroline participated in?", True),
    ("How many times did they hike together?", True),
    ("In what ways is Caroline helping?", True),
    ("What is Caroline's identity?", False),
    ("What does Melanie do to destress?", False),
    ("When did Melanie paint a sunrise?", False),
    ("Where has Melanie camped?", False),
    ("What class did Nate take?", False),
])
def test_which_benchmark_questions_ask_for_several(query: str, several: bool) -> None:
    assert asks_for_several(query) is several


def test_the_speakers_names_leave_the_query_vector() -> None:
    assert vector_query("What is Caroline's identity?", ["Caroline", "Melanie"]) == \
        "What is identity?"
    assert vector_query("Which city have both Jean and John visited?") == \
        "Which city have both and visited?"
    assert vector_query("Caroline?", ["Caroline"]) == "Caroline?"
