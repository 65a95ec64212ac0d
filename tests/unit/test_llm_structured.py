from __future__ import annotations

from typing import Any

import pytest

from soloist.errors import DeterministicError, InvalidOutput
from soloist.execution.llm import parse_json_output, repair_prompt

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["spam", "lead", "support"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["label", "score"],
    "additionalProperties": False,
}


def test_valid_json_matching_the_schema() -> None:
    value = parse_json_output('{"label": "lead", "score": 0.9, "tags": ["b2b"]}', SCHEMA)
    assert value == {"label": "lead", "score": 0.9, "tags": ["b2b"]}


def test_a_code_fence_is_tolerated() -> None:
    text = '```json\n{"label": "spam", "score": 0.1}\n```'
    assert parse_json_output(text, SCHEMA) == {"label": "spam", "score": 0.1}
    assert parse_json_output("```\n[1, 2]\n```", None) == [1, 2]


def test_without_schema_any_json_is_accepted() -> None:
    assert parse_json_output(" 42 ", None) == 42


def test_invalid_json_is_a_deterministic_error() -> None:
    with pytest.raises(InvalidOutput) as caught:
        parse_json_output("Sure! Here it is: {label: lead}", SCHEMA)
    error = caught.value
    assert isinstance(error, DeterministicError) and error.kind == "deterministic"
    assert "not valid JSON" in error.message
    assert error.text.startswith("Sure!")


def test_schema_mismatch_lists_the_problems() -> None:
    with pytest.raises(InvalidOutput) as caught:
        parse_json_output('{"label": "maybe", "score": 2, "tags": [1], "x": 0}', SCHEMA)
    problems = caught.value.problems
    assert len(problems) == 4
    assert any(p.startswith("$.label:") for p in problems)
    assert any(p.startswith("$.score:") for p in problems)
    assert any(p.startswith("$.tags[0]:") for p in problems)
    assert any("'x'" in p for p in problems)
    assert "does not match the schema" in caught.value.message
    assert "(and 3 more problem(s))" in caught.value.message


def test_missing_required_property() -> None:
    with pytest.raises(InvalidOutput, match="'score' is a required property"):
        parse_json_output('{"label": "lead"}', SCHEMA)


def test_an_invalid_schema_is_reported_as_such() -> None:
    with pytest.raises(DeterministicError, match="response schema is invalid") as caught:
        parse_json_output("{}", {"type": "no-such-type"})
    assert not isinstance(caught.value, InvalidOutput)


def test_repair_prompt_names_the_problems() -> None:
    with pytest.raises(InvalidOutput) as caught:
        parse_json_output('{"label": "lead"}', SCHEMA)
    prompt = repair_prompt(caught.value)
    assert "- $: 'score' is a required property" in prompt
    assert "only the corrected JSON" in prompt
    assert "- something odd" in repair_prompt("something odd")
    assert "- boom" in repair_prompt(ValueError("boom"))
