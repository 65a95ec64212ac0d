"""Saying once that the database went away, and once that it came back.

A worker, the scheduler and the wake-up listener all retry while the database is down (a
restart, a partition, a failover). Each poll that fails is not news: the log gets one line
when the outage begins and one when it ends, with how long it lasted.
"""

from __future__ import annotations

import logging
import time

from soloist.errors import StoreError

#: The longest pause between two attempts during an outage.
MAX_BACKOFF_S = 2.0


class Outage:
    """The state of one loop's connection to the store: up, or down since when."""

    def __init__(self, log: logging.Logger, who: str) -> None:
        self.log = log
        self.who = who
        self.since: float | None = None  # monotonic
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: StoreError) -> float:
        """Record a failed attempt; returns how long to wait before the next one."""
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s: the store is unreachable, retrying until it is back: %s",
                             self.who, exc.message)
        return min(MAX_BACKOFF_S, 0.1 * 2.0 ** min(self.failures, 10))

    def ok(self) -> None:
        """Record a successful attempt (says so if it ends an outage)."""
        if self.since is not None:
            self.log.warning("%s: the store is reachable again after %.1f s (%d failed "
                             "attempts)", self.who, time.monotonic() - self.since,
                             self.failures)
        self.since = None
        self.failures = 0
