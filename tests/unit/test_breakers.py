from __future__ import annotations

import re

import pytest

from soloist.control.breakers import BreakerPolicy, after_call, before_call
from soloist.store.base import BreakerRow

POLICY = BreakerPolicy(failure_threshold=3, cooldown=10.0)


def test_opens_after_repeated_transient_failures_then_half_opens_and_closes() -> None:
    row = None
    for i in range(3):
        assert before_call(row, float(i), POLICY).allow
        row = after_call(row, "openai", ok=False, transient=True, now=float(i), policy=POLICY)
    assert row is not None and row.state == "open" and row.opened_at == 2.0
    check = before_call(row, 5.0, POLICY)
    assert not check.allow and check.wait == 7.0
    probe = before_call(row, 12.5, POLICY)
    assert probe.allow and probe.probe
    closed = after_call(row, "openai", ok=True, transient=False, now=13.0, policy=POLICY)
    assert closed == BreakerRow("openai", "closed", 0, None, 13.0)


def test_a_failed_probe_opens_again_at_once() -> None:
    row = BreakerRow("x", "open", 3, 0.0, 0.0)
    assert before_call(row, 11.0, POLICY).probe
    again = after_call(row, "x", ok=False, transient=True, now=11.0, policy=POLICY)
    assert again is not None and again.state == "open" and again.opened_at == 11.0


def test_deterministic_failures_and_quiet_successes_change_nothing() -> None:
    assert after_call(None, "x", ok=False, transient=False, now=1.0, policy=POLICY) is None
    assert after_call(None, "x", ok=True, transient=False, now=1.0, policy=POLICY) is None
    one = after_call(None, "x", ok=False, transient=True, now=1.0, policy=POLICY)
    assert one is not None and one.state == "closed" and one.failures == 1


def test_breakers_come_from_the_toml_with_overrides_per_provider() -> None:
    from soloist.config import parse_table
    from soloist.config.sections import BreakersSection
    from soloist.control.breakers import Breakers, configured_breakers

    assert configured_breakers(None) == Breakers()
    assert configured_breakers(parse_table(BreakersSection, {}, "breakers")) == Breakers()
    breakers = configured_breakers(parse_table(BreakersSection, {
        "failure_threshold": 2, "cooldown": "1m", "ollama": {"cooldown": 5}}, "breakers"))
    assert breakers.policy("openai") == BreakerPolicy(failure_threshold=2, cooldown=60.0)
    # an override keeps the default's other settings
    assert breakers.policy("ollama") == BreakerPolicy(failure_threshold=2, cooldown=5.0)


@pytest.mark.parametrize(("section", "message"), [
    ({"failure_threshold": 0}, "[breakers] failure_threshold: expected a whole number"),
    ({"failure_threshold": True}, "[breakers] failure_threshold: expected a whole number"),
    ({"cooldown": "soon"}, "[breakers] cooldown: 'soon' is not a duration"),
    ({"threshold": 3}, "unknown key threshold in [breakers]; did you mean failure_threshold?"),
    ({"openai": {"cooldown": -1}}, "[breakers.openai] cooldown: a duration cannot be negative"),
])
def test_bad_breaker_settings_are_one_sentence(section: dict[str, object], message: str
                                               ) -> None:
    from soloist.config import parse_table
    from soloist.config.sections import BreakersSection
    from soloist.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_table(BreakersSection, section, "breakers")
