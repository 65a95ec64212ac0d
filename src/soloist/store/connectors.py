"""The storage contract of connector state: cursors, shared buckets and slots, inbound backlogs.

Four tables, the same on both backends, reached as ``tx.cursors``, ``tx.buckets`` and
``tx.inbound``. Every time they record is read from the database's clock, never a
worker's, so workers on hosts whose clocks disagree still share one bucket, one lease and
one order of arrival.

* ``connector_cursors`` -- (connector, source) -> value: where a connector stopped reading a
  source (IMAP UIDVALIDITY and last UID, a CalDAV sync token, git refs), as JSON text, with
  a ``version`` that each write moves on by one. A write names the version it read
  (``None``: there was none), so of two workers advancing the same cursor one wins and the
  other is told (``put`` returns ``None``) instead of overwriting it.
* ``connector_buckets`` -- connector -> (tokens, updated_at): a token bucket's state; its
  rate and burst are configuration, passed in each time (``soloist.control.buckets``).
* ``connector_slots`` -- (connector, holder) -> expires_at: a concurrency cap's slots.
  ``lock_bucket`` and ``lock_slots`` lock the connector's state until commit (an advisory
  lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already makes each writer the only one)
  and then read the clock, so the decision is made on a time no other worker's precedes.
* ``inbound_events`` -- a bounded backlog of events received from outside, per source, with
  the sender's delivery id unique per source: ``accept`` says ``accepted``, ``duplicate``
  (already stored: acknowledge it again, store nothing) or ``full`` (the source already has
  ``limit`` unprocessed events: the sender is told to come back, e.g. a 503), and an event
  once accepted stays until it is processed.

They live in the store proper, so a snapshot restore rewinds a cursor together with the
backlog it fed: after a restore a connector reads again from where the snapshot stood.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class CursorRow:
    connector: str
    source: str
    value: Any
    version: int  # 1 for the first write, one more for each write after it
    updated_at: float


@dataclass(frozen=True, slots=True)
class BucketRow:
    name: str
    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class SlotRow:
    name: str
    holder: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class InboundRow:
    id: int
    source: str
    delivery_id: str
    payload: Any
    received_at: float
    processed_at: float | None


Accepted = Literal["accepted", "duplicate", "full"]


@dataclass(frozen=True, slots=True)
class Acceptance:
    outcome: Accepted
    id: int | None  # the stored event's (also for a duplicate); None when full


class Cursors(Protocol):
    def get(self, connector: str, source: str) -> CursorRow | None: ...
    def put(self, connector: str, source: str, value: Any,
            expect_version: int | None) -> CursorRow | None:
        """Write the cursor if its version is still ``expect_version`` (``None``: there is
        no cursor yet); the new row, or ``None`` when another write came first."""
        ...
    def list(self, connector: str | None = None) -> builtins.list[CursorRow]:
        """By connector and source."""
        ...


class Buckets(Protocol):
    def lock_bucket(self, name: str) -> tuple[BucketRow | None, float]:
        """Lock the connector's bucket and slots until commit; its bucket (None: never
        used) and the database's clock, read after the lock."""
        ...
    def put_bucket(self, row: BucketRow) -> None: ...
    def lock_slots(self, name: str) -> tuple[builtins.list[SlotRow], float]:
        """As :meth:`lock_bucket`, for the connector's slots (expired ones included)."""
        ...
    def put_slot(self, row: SlotRow) -> None: ...
    def drop_slots(self, name: str, holders: Sequence[str]) -> None: ...
    def buckets(self) -> builtins.list[BucketRow]: ...
    def slots(self, name: str | None = None) -> builtins.list[SlotRow]: ...


class Inbound(Protocol):
    def accept(self, source: str, delivery_id: str, payload: Any, limit: int) -> Acceptance:
        """Store an event received from ``source`` unless its delivery id is already
        stored, or ``limit`` events of the source wait to be processed."""
        ...
    def take_batch(self, source: str, limit: int) -> builtins.list[InboundRow]:
        """The oldest unprocessed events of ``source``, in a write transaction: on
        PostgreSQL they stay locked until commit, and a concurrent taker skips them."""
        ...
    def mark_processed(self, ids: Sequence[int]) -> int:
        """Mark unprocessed events processed; how many were."""
        ...
    def backlog(self, source: str) -> int:
        """How many events of ``source`` wait to be processed."""
        ...
    def backlogs(self) -> dict[str, int]:
        """:meth:`backlog` of every source that has one, by source."""
        ...
