"""Strict JSON: the one way JSON from outside (a person, a file, a model) comes in.

Python's :mod:`json` accepts ``NaN``, ``Infinity`` and ``-Infinity``, and reads ``1e999``
as ``inf``. None of them is JSON, no schema's ``type: number`` rejects them, and
``inf > 0`` passes a check, so an "invoice of inf" would wait for approval. Every door
uses :func:`loads` for text, or :func:`check_finite` for a value already parsed (a dict
handed to a Python API), and refuses such numbers with one sentence.
"""

from __future__ import annotations

import json
import math
from typing import Any

from soloist.errors import InputError

#: What a person may hand in as one JSON document (``--input @file``, a memory value).
MAX_INPUT_BYTES = 1024 * 1024


class _NotFinite(ValueError):
    """Not a Soloist error: the ``json`` module's constant hook raises it, and ``loads``
    turns it into an :class:`~soloist.errors.InputError` before anyone else sees it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _constant(text: str) -> Any:
    raise _NotFinite(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _refusal(source: str, text: str) -> InputError:
    return InputError(f"{source} holds the number {text}, which JSON cannot carry; "
                      "give a finite number")


def loads(text: str | bytes, source: str = "the JSON") -> Any:
    """Parse JSON, refusing ``NaN``, ``Infinity``, ``-Infinity`` and numbers too large for
    a double (``1e999``). ``json.JSONDecodeError`` still means "not JSON"; a non-finite
    number, a number of thousands of digits or nesting deeper than the parser goes is an
    :class:`InputError` naming ``source``."""
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_float)
    except _NotFinite as exc:
        raise _refusal(source, exc.text) from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer of more digits than Python converts
        raise InputError(f"{source} holds a number too long to read") from None
    except RecursionError:
        raise InputError(f"{source} is nested too deeply to read") from None


def check_finite(value: Any, source: str = "the value") -> Any:
    """``value`` itself when it holds no NaN or infinite float (at any depth); else an
    :class:`InputError` that says where."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:  # a loop, not recursion: a deep value cannot exhaust the stack
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            where = f" at {path.lstrip('.')}" if path else ""
            spelled = "NaN" if math.isnan(item) else "Infinity" if item > 0 else "-Infinity"
            raise InputError(f"{source}{where} holds the number {spelled}, which JSON cannot "
                             "carry; give a finite number")
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return value


def read_limited(stream: Any, source: str, limit: int = MAX_INPUT_BYTES) -> str:
    """At most ``limit`` bytes of a binary stream as UTF-8 text: a larger or endless input
    (``@/dev/urandom``) and bytes that are not UTF-8 are refused, not read for ever."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        cap = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit:,} bytes"
        raise InputError(f"{source} is larger than {cap}, the most an input may be; pass a "
                         "smaller document")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source} is not UTF-8 text (byte {exc.start + 1} cannot be read); "
                         "save it as UTF-8") from None
