"""What happens after a step fails: a pure decision from the failure and the policy."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from soloist.control.playbooks import RetryPolicy
from soloist.errors import FailureKind


@dataclass(frozen=True, slots=True)
class RetryDecision:
    action: Literal["retry", "fail", "gate"]
    delay: float = 0.0
    reason: str = ""


#: how long a wait that did not say for how long lasts, in seconds
DEFAULT_WAIT = 1.0


def wait_of(error: BaseException) -> float | None:
    """Seconds to wait before trying again when ``error`` is nobody's failure (an open
    breaker, a rate limit, a ``429``: ``counts_attempt = False``), or None when it is a
    failure that spends an attempt."""
    if getattr(error, "counts_attempt", True):
        return None
    retry_after = getattr(error, "retry_after", None)
    return DEFAULT_WAIT if retry_after is None else retry_after


def backoff(policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with jitter."""
    base = min(policy.max_backoff, policy.backoff * policy.multiplier ** max(0, attempt - 1))
    spread = base * policy.jitter
    return max(0.0, base - spread + 2 * spread * rand())


def decide(
    policy: RetryPolicy,
    kind: FailureKind,
    attempt: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Transient failures retry until ``max_attempts``; deterministic ones fail at once;
    semantic ones go to a person."""
    if kind == "semantic":
        return RetryDecision("gate", reason="a check failed: a person decides")
    if kind == "deterministic":
        return RetryDecision("fail", reason="deterministic failure")
    if attempt >= policy.max_attempts:
        return RetryDecision("fail", reason=f"gave up after {attempt} attempt(s)")
    delay = backoff(policy, attempt, rand)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return RetryDecision("retry", delay=delay, reason=f"attempt {attempt} failed transiently")
