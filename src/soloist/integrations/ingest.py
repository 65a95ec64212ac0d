"""Inbound: sources polled into the store's bounded backlog, with their cursors.

One poll of a source (:func:`poll_once`) reads its cursor, asks the source for at most as
many events as its backlog has room for, then in one transaction stores each event (by
its delivery id: a second copy is acknowledged, not stored) and moves the cursor to the
last event kept. The cursor write names the version it read, so of two processes that
polled the same source one wins and the other's transaction is dropped whole; the
delivery ids make even that harmless. A source whose backlog is full is not polled
("paused") until the scheduler has published what waits there on the event bus.

:class:`Poller` is the loop a worker process runs beside its worker: each source is polled
every ``interval`` seconds by one process at a time (a named lead in the store, so two
hosts do not both poll one mailbox).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from soloist.errors import SoloistError, describe
from soloist.integrations.connector import Connector, Source
from soloist.integrations.registry import source_key
from soloist.store.base import NewEvent, Store

_log = logging.getLogger(__name__)
#: how long a process keeps the lead of a source it polls without renewing it
LEAD_SECONDS = 30.0


class _CursorMoved(Exception):
    """Another process advanced the cursor first: this poll's writes are dropped."""


@dataclass(frozen=True)
class PollReport:
    source: str
    accepted: int = 0
    duplicates: int = 0
    paused: bool = False  # the backlog was full: nothing was read
    more: bool = False  # the source holds more than there was room for
    error: str | None = None


def poll_once(store: Store, connector: Connector, source: Source) -> PollReport:
    """Read what is new in ``source`` into the backlog (see the module's docstring)."""
    key = source_key(connector.name, source.id)
    limit = connector.section.backlog
    with store.read() as tx:
        cursor = tx.cursors.get(connector.name, source.id)
        room = limit - tx.inbound.backlog(key)
    if room <= 0:
        return PollReport(key, paused=True)
    polled = source.poll(None if cursor is None else cursor.value, room)
    accepted = duplicates = 0
    last: Any = cursor.value if cursor is not None else None
    moved = False
    try:
        with store.transaction() as tx:
            full = False
            for event in polled.events:
                outcome = tx.inbound.accept(key, event.delivery_id, {
                    "topic": event.topic, "payload": event.payload}, limit)
                if outcome.outcome == "full":
                    full = True
                    break
                if outcome.outcome == "accepted":
                    accepted += 1
                else:
                    duplicates += 1
                last, moved = event.cursor, True
            if not full and polled.cursor is not None:
                last, moved = polled.cursor, True
            if moved and (cursor is None or last != cursor.value):
                written = tx.cursors.put(connector.name, source.id, last,
                                         None if cursor is None else cursor.version)
                if written is None:
                    raise _CursorMoved(f"the cursor of {key} moved while it was polled")
            if accepted:
                tx.events.append(NewEvent("connector.received", {
                    "connector": connector.name, "source": source.id,
                    "accepted": accepted, "duplicates": duplicates},
                    actor=f"connector:{connector.name}", ts=time.time()))
    except _CursorMoved:
        return PollReport(key)
    return PollReport(key, accepted, duplicates, more=polled.more or full)


class Poller:
    """Polls every source of the given connectors until :meth:`stop`."""

    def __init__(self, store: Store, sources: Sequence[tuple[Connector, Source]],
                 owner: str, *, tick: float = 0.2) -> None:
        self.store = store
        self.sources = list(sources)
        self.owner = owner
        self.tick = tick
        self.stop_event = threading.Event()
        self.last: dict[str, PollReport] = {}

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        due = {source_key(c.name, s.id): 0.0 for c, s in self.sources}
        try:
            while not self.stop_event.is_set():
                now = time.time()
                for connector, source in self.sources:
                    key = source_key(connector.name, source.id)
                    if now < due[key]:
                        continue
                    report = self._poll(connector, source, key, now)
                    # More waiting: come back at once; paused: as soon as there is room.
                    wait = self.tick if report.more or report.paused else source.interval
                    due[key] = time.time() + wait
                self.stop_event.wait(self.tick)
        finally:
            self._resign()

    def _poll(self, connector: Connector, source: Source, key: str,
              now: float) -> PollReport:
        try:
            with self.store.transaction() as tx:
                # Leadership is a lease every host reads: on the deployment's clock.
                leading = tx.scheduler.try_lead(f"poll:{key}", self.owner, tx.now(),
                                                LEAD_SECONDS)
            if not leading:
                return PollReport(key)
            report = poll_once(self.store, connector, source)
        except SoloistError as exc:
            report = PollReport(key, error=describe(exc))
            _log.warning("polling %s failed: %s", key, report.error)
        except Exception as exc:  # a bug in one source must not stop the others
            report = PollReport(key, error=f"internal error: {describe(exc)}")
            _log.exception("polling %s failed", key)
        self.last[key] = report
        return report

    def _resign(self) -> None:
        try:
            with self.store.transaction() as tx:
                for connector, source in self.sources:
                    tx.scheduler.resign(f"poll:{source_key(connector.name, source.id)}",
                                        self.owner)
        except SoloistError:
            pass  # the leads run out by themselves
