"""Durations written as ``30s``, ``5m``, ``2h``, ``1d`` or plain seconds (the settings read
them too, so they live in the config plane)."""

from soloist.config.durations import (
    Duration,
    PositiveDuration,
    parse_duration,
    parse_positive_duration,
)

__all__ = ["Duration", "PositiveDuration", "parse_duration", "parse_positive_duration"]
