"""soloist.jsonvalues: the one strict JSON reader every door uses."""

from __future__ import annotations

import io
import json
import math

import pytest

from soloist.errors import InputError
from soloist.jsonvalues import MAX_INPUT_BYTES, check_finite, loads, read_limited


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[-Infinity]",
                                  '{"a": 1e999}', '{"a": [1, {"b": -1E400}]}'])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="which JSON cannot carry"):
        loads(text, "--input")


def test_finite_json_is_read_as_json_and_not_json_stays_a_decode_error() -> None:
    assert loads('{"a": 1.5, "b": [1e308, -2, "NaN"]}') == {"a": 1.5, "b": [1e308, -2, "NaN"]}
    with pytest.raises(json.JSONDecodeError):
        loads("{nope")


@pytest.mark.parametrize(("text", "problem"), [("[" * 200_000, "nested too deeply"),
                                               ("9" * 5000, "too long to read")])
def test_hostile_shapes_are_one_sentence(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        loads(text, "--input")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_parsed_values_are_checked_at_any_depth(value: float) -> None:
    with pytest.raises(InputError, match=r"the inputs at a\[1\]\.b holds the number"):
        check_finite({"a": [1, {"b": value}]}, "the inputs")
    deep: object = value
    for _ in range(50_000):  # no recursion: a deep value cannot exhaust the stack
        deep = [deep]
    with pytest.raises(InputError):
        check_finite(deep)
    assert check_finite({"a": (1, 2.5, None, "inf")}) == {"a": (1, 2.5, None, "inf")}


def test_reading_is_capped_and_utf8() -> None:
    assert read_limited(io.BytesIO("é".encode()), "f") == "é"
    with pytest.raises(InputError, match="larger than 1 MiB"):
        read_limited(io.BytesIO(b"x" * (MAX_INPUT_BYTES + 1)), "f")
    with pytest.raises(InputError, match="not UTF-8"):
        read_limited(io.BytesIO(b"\xff\xfe"), "f")
