"""Circuit breakers, one per provider or connector, their state shared through the store.

Pure decisions here; the store keeps the state so that every worker on every machine
sees the same breaker. A breaker opens after ``failure_threshold`` transient failures in
a row, lets one probe through after ``cooldown`` seconds (half-open), and closes on a
success. While it is open, callers wait: it is not their failure.

The policy comes from ``soloist.toml``, one default and overrides per provider::

    [breakers]
    failure_threshold = 5
    cooldown = "30s"

    [breakers.openai]     # the provider's name in [llm.providers]
    cooldown = "2m"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from soloist.control.durations import parse_duration
from soloist.errors import ConfigError
from soloist.store.base import BreakerRow


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True)
class Breakers:
    """Every breaker's policy: a default, and overrides by provider name."""

    default: BreakerPolicy = BreakerPolicy()
    by_name: Mapping[str, BreakerPolicy] = field(default_factory=dict)

    def policy(self, name: str) -> BreakerPolicy:
        return self.by_name.get(name, self.default)


def _policy(table: Mapping[str, Any], base: BreakerPolicy, where: str) -> BreakerPolicy:
    policy = base
    for key, value in table.items():
        if key == "failure_threshold":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where} failure_threshold: expected a whole number of "
                                  f"at least 1, not {value!r}")
            policy = replace(policy, failure_threshold=value)
        elif key == "cooldown":
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise ConfigError(f"{where} cooldown: {exc}") from None
            policy = replace(policy, cooldown=seconds)
        else:
            raise ConfigError(f"{where} {key}: unknown setting (known: failure_threshold, "
                              "cooldown, or a table per provider)")
    return policy


def configured_breakers(section: Mapping[str, Any] | None) -> Breakers:
    """The ``[breakers]`` table of ``soloist.toml`` (none: the defaults)."""
    section = section or {}
    default = _policy({k: v for k, v in section.items() if not isinstance(v, dict)},
                      BreakerPolicy(), "[breakers]")
    by_name = {name: _policy(table, default, f"[breakers.{name}]")
               for name, table in section.items() if isinstance(table, dict)}
    return Breakers(default, by_name)


@dataclass(frozen=True)
class BreakerCheck:
    allow: bool
    wait: float = 0.0
    probe: bool = False


def before_call(row: BreakerRow | None, now: float, policy: BreakerPolicy) -> BreakerCheck:
    if row is None or row.state == "closed":
        return BreakerCheck(True)
    opened = row.opened_at or row.updated_at
    remaining = opened + policy.cooldown - now
    if row.state == "open" and remaining > 0:
        return BreakerCheck(False, wait=remaining)
    return BreakerCheck(True, probe=True)


def after_call(row: BreakerRow | None, name: str, *, ok: bool, transient: bool, now: float,
               policy: BreakerPolicy) -> BreakerRow | None:
    """The new state after a call; ``None`` when nothing changes (nothing to write)."""
    if ok:
        if row is None or (row.state == "closed" and row.failures == 0):
            return None
        return BreakerRow(name, "closed", 0, None, now)
    if not transient:
        return None  # a bad request says nothing about the provider's health
    failures = (row.failures if row else 0) + 1
    was_probe = row is not None and row.state != "closed"
    if was_probe or failures >= policy.failure_threshold:
        return BreakerRow(name, "open", failures, now, now)
    return BreakerRow(name, "closed", failures, None, now)
