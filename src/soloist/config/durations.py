"""Durations written as ``30s``, ``5m``, ``2h``, ``1d`` or plain seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds in ``value``; raises ``ValueError`` with a hint when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            raise ValueError("a duration must be a finite number of seconds")
        if seconds < 0:
            raise ValueError("a duration cannot be negative")
        return seconds
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
            if math.isfinite(seconds):
                return seconds
            raise ValueError(f"{value!r} is too long a duration")
    raise ValueError(f"{value!r} is not a duration; write it as 30s, 5m, 2h or 1d")


def parse_positive_duration(value: Any) -> float:
    """Like :func:`parse_duration`, for limits (deadlines, timeouts) that zero would make moot."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} is no time at all; give a duration above zero, such as 30s")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_positive_duration)]
