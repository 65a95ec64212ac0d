"""The process registry: a row per live worker or scheduler process, with a heartbeat.

What is alive is what a snapshot restore must not pull the store from under: leases show
only the steps a worker holds at this instant, not the idle worker that will claim the
next one, nor a scheduler about to fire a cron trigger. Each process announces itself when
it starts, again every ``period / 3`` seconds, and removes its row when it stops cleanly;
one that died is taken for gone once it has missed :data:`ALIVE_PERIODS` periods.

A person may ask a worker to drain (``soloist workers drain``): the request is a mark on
its row, which the worker reads at each beat (:attr:`Presence.draining`); from then on it
claims nothing more, finishes the steps in hand and stops.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from soloist.errors import StoreError
from soloist.store.base import Store

#: A process is alive while its last heartbeat is younger than this many of its periods.
ALIVE_PERIODS = 2.0


def soloist_version() -> str:
    """The installed package's version, as ``soloist --version`` prints it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("soloist")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class Presence:
    """One process's row in the registry, kept fresh by :meth:`beat` from its loop."""

    def __init__(self, store: Store, process_id: str, role: str, period: float) -> None:
        self.store = store
        self.id = process_id
        self.role = role  # worker | scheduler
        self.period = max(1.0, period)
        self._next = 0.0
        self.started_at = store.now()
        self.version = soloist_version()
        #: Set by a beat that found a drain request on this process's row; never unset.
        self.draining = False

    def beat(self, now: float | None = None) -> None:
        """Announce (or renew) this process, at most every ``period / 3`` seconds."""
        now = self.store.now() if now is None else now
        if now < self._next:
            return
        info = {"role": self.role, "host": socket.gethostname(), "pid": os.getpid(),
                "period": self.period}
        try:
            with self.store.transaction() as tx:
                tx.scheduler.worker_seen(self.id, info, now, started_at=self.started_at,
                                         version=self.version)
                self.draining = self.draining or tx.scheduler.drain_requested(self.id)
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
