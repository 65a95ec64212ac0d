"""The deployment's one clock: the database server's, as read from this process.

Leases, retry backoffs, gate timeouts, deadlines, cron fires and heartbeats are instants
that one process writes and another compares. On one host (SQLite) every process reads
the same clock. Across hosts a worker whose clock runs a minute ahead would reap leases
that are still alive, and one running behind would renew leases others already see as
expired; so on PostgreSQL every such instant is read on the server's clock.

Asking the server for each instant would add a round trip to every decision. Instead the
offset between this process's clock and the server's is measured (the midpoint of a short
round trip, accurate to half of it: well under a millisecond on a LAN) and measured again
every few seconds, so a clock that drifts or is stepped by NTP is followed within
:data:`RESAMPLE_S`. When the server cannot be asked (it is down), the last offset stays in
use: the decisions that need the database fail on their own anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)

#: How often the offset to the server's clock is measured again.
RESAMPLE_S = 5.0
#: An offset beyond this is worth one line in the log: that host's clock is wrong.
NOTABLE_SKEW_S = 1.0


class ServerClock:
    """``time.time()`` corrected to the server's clock.

    ``sample`` reads the server's clock in epoch seconds, or raises; it is called at most
    once per :data:`RESAMPLE_S` seconds, by whichever thread first needs a fresh reading
    (the others go on with the previous offset rather than wait).
    """

    def __init__(self, sample: Callable[[], float | None], where: str) -> None:
        self._sample = sample
        self.where = where
        self.offset = 0.0
        self._due = 0.0  # on the monotonic clock
        self._lock = threading.Lock()
        self._reported = False

    def now(self) -> float:
        if time.monotonic() >= self._due:
            self.measure()
        return time.time() + self.offset

    def measure(self) -> None:
        """Measure the offset again now (unless another thread is doing it)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            before = time.time()
            try:
                server = self._sample()
            except Exception:  # the server is unreachable: keep the last offset
                server = None
            after = time.time()
            self._due = time.monotonic() + RESAMPLE_S
            if server is None:
                return
            self.offset = server - (before + after) / 2
            notable = abs(self.offset) >= NOTABLE_SKEW_S
            if notable and not self._reported:
                _log.warning("this host's clock is %+.1f s off the database's at %s: leases "
                             "and timers use the database's", -self.offset, self.where)
            self._reported = notable
        finally:
            self._lock.release()
