"""Circuit breakers, one per provider or connector, their state shared through the store.

Pure decisions here; the store keeps the state so that every worker on every machine
sees the same breaker. A breaker opens after ``failure_threshold`` transient failures in
a row, lets one probe through after ``cooldown`` seconds (half-open), and closes on a
success. While it is open, callers wait: it is not their failure.

The policy comes from ``soloist.toml``, one default and overrides per provider or
connector::

    [breakers]
    failure_threshold = 5
    cooldown = "30s"

    [breakers.openai]     # the provider's name in [llm.providers]
    cooldown = "2m"

    [breakers.mail]       # a connector's name in [connectors]
    failure_threshold = 3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from soloist.store.base import BreakerRow

if TYPE_CHECKING:
    from soloist.config.sections import BreakersSection


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


def configured_breakers(section: BreakersSection | None) -> Breakers:
    """The policies of the ``[breakers]`` table (none: the defaults); a provider's table
    keeps the default's settings it does not give."""
    if section is None:
        return Breakers()
    default = BreakerPolicy(section.failure_threshold, section.cooldown)
    by_name = {name: BreakerPolicy(
        default.failure_threshold if table.failure_threshold is None
        else table.failure_threshold,
        default.cooldown if table.cooldown is None else table.cooldown)
        for name, table in section.providers.items()}
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
