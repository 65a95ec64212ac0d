from __future__ import annotations

import pytest

from soloist.control.playbooks import RetryPolicy
from soloist.control.retry import backoff, decide
from soloist.errors import DeterministicError, SemanticError, TransientError, classify

POLICY = RetryPolicy(max_attempts=4, backoff=1.0, multiplier=2.0, max_backoff=5.0, jitter=0.0)


def test_transient_retries_with_exponential_backoff() -> None:
    delays = [decide(POLICY, "transient", attempt).delay for attempt in (1, 2, 3)]
    assert delays == [1.0, 2.0, 4.0]
    assert all(decide(POLICY, "transient", a).action == "retry" for a in (1, 2, 3))


def test_transient_gives_up_after_max_attempts() -> None:
    decision = decide(POLICY, "transient", 4)
    assert decision.action == "fail"
    assert "4 attempt" in decision.reason


def test_backoff_is_capped() -> None:
    assert backoff(POLICY, 10) == 5.0


def test_jitter_stays_within_its_spread() -> None:
    policy = RetryPolicy(backoff=10.0, jitter=0.2)
    assert backoff(policy, 1, rand=lambda: 0.0) == pytest.approx(8.0)
    assert backoff(policy, 1, rand=lambda: 1.0) == pytest.approx(12.0)


def test_retry_after_is_honoured() -> None:
    assert decide(POLICY, "transient", 1, retry_after=30.0).delay == 30.0


def test_deterministic_fails_at_once_and_semantic_goes_to_a_person() -> None:
    assert decide(POLICY, "deterministic", 1).action == "fail"
    assert decide(POLICY, "semantic", 1).action == "gate"


def test_classification() -> None:
    assert classify(TransientError("x")) == "transient"
    assert classify(TimeoutError()) == "transient"
    assert classify(ConnectionResetError()) == "transient"
    assert classify(DeterministicError("x")) == "deterministic"
    assert classify(SemanticError("x")) == "semantic"
    assert classify(ValueError("x")) == "deterministic"
