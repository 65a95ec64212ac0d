"""The process registry: a row per live worker or scheduler process, with a heartbeat.

What is alive is what a snapshot restore must not pull the store from under: leases show
only the steps a worker holds at this instant, not the idle worker that will claim the
next one, nor a scheduler about to fire a cron trigger. Each process announces itself when
it starts, again every ``period / 3`` seconds, and removes its row when it stops cleanly;
one that died is taken for gone once it has missed :data:`ALIVE_PERIODS` periods.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from soloist.errors import StoreError
from soloist.store.base import Store

#: A process is alive while its last heartbeat is younger than this many of its periods.
ALIVE_PERIODS = 2.0


class Presence:
    """One process's row in the registry, kept fresh by :meth:`beat` from its loop."""

    def __init__(self, store: Store, process_id: str, role: str, period: float) -> None:
        self.store = store
        self.id = process_id
        self.role = role  # worker | scheduler
        self.period = max(1.0, period)
        self._next = 0.0

    def beat(self, now: float | None = None) -> None:
        """Announce (or renew) this process, at most every ``period / 3`` seconds."""
        now = self.store.now() if now is None else now
        if now < self._next:
            return
        info = {"role": self.role, "host": socket.gethostname(), "pid": os.getpid(),
                "period": self.period}
        try:
            with self.store.transaction() as tx:
                tx.scheduler.worker_seen(self.id, info, now)
        except StoreError:
            return  # the next beat tries again; a missed one only ages the row
        self._next = now + self.period / 3

    def leave(self) -> None:
        """Remove the row on a clean stop (a crash leaves it to age out)."""
        try:
            with self.store.transaction() as tx:
                tx.scheduler.worker_gone(self.id)
        except StoreError:
            pass


def alive(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """The worker and scheduler processes whose last heartbeat is recent enough."""
    now = store.now() if now is None else now
    with store.read() as tx:
        rows = tx.scheduler.workers(now - 86400)
    return [r for r in rows
            if now - float(r["heartbeat_at"]) <= ALIVE_PERIODS * float(r.get("period", 30.0))]
