"""A connector's guard: its circuit breaker, concurrency cap and rate limit, shared by every
worker through the store, around each call to its server.

In order, before the call:

1. the breaker (``connector:NAME`` in the store, policy ``[breakers.NAME]`` or the
   default): open, and the step waits for the cooldown (:class:`~soloist.errors.BreakerOpen`,
   no attempt spent);
2. the concurrency cap: a slot held under the call's idempotency key for the call's
   timeout; full, and the step waits (:class:`~soloist.errors.Throttled`) a moment;
3. the rate limit: a turn of the shared bucket (``rate``, at most ``burst`` in any
   second), booked in the store under the call's key; a turn within :data:`HORIZON`
   seconds is waited for here, in the executor thread; one further off makes the step
   wait (``Throttled``) until shortly before it, then come back for it.

After it: a success closes the breaker, a transient failure counts towards opening it
(one that opens it becomes a wait too: the connector, not the step, is failing), and a
``Throttled`` from the server (``429``, ``Retry-After``) says nothing about its health. The
slot is given back in every case.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from soloist.config.connectors import ConnectorBase
from soloist.control.breakers import BreakerPolicy, after_call, before_call
from soloist.control.buckets import acquire_slot, book_turn, release_slot
from soloist.errors import BreakerOpen, StepFailure, Throttled
from soloist.store.base import BreakerRow, Store

T = TypeVar("T")
#: the furthest turn of the rate limit a call waits for in its thread, in seconds
HORIZON = 2.0
#: how long before its booked turn a step that was told to wait comes back for it
LEAD = 1.0
#: how long the breaker's state read from the store is trusted before it is read again
BREAKER_SECONDS = 1.0
#: how late a call may still take its turn, in seconds (see Guard.wait_turn)
MISSED = 0.02
#: how long a step whose connector is at its concurrency cap waits before asking again
SLOT_WAIT = 0.25
#: a slot outlives the call's timeout by this much: a crashed holder's comes back after it
SLOT_MARGIN = 5.0


def breaker_name(connector: str) -> str:
    return f"connector:{connector}"


class Guard:
    def __init__(self, store: Store, name: str, section: ConnectorBase,
                 breaker: BreakerPolicy, *, sleep: Callable[[float], None] = time.sleep
                 ) -> None:
        self.store = store
        self.name = name
        self.section = section
        self.breaker = breaker
        self._sleep = sleep
        #: the breaker's state as last read or written here, and when (monotonic)
        self._breaker: tuple[float, BreakerRow | None] | None = None

    def call(self, key: str, fn: Callable[[], T], *, turn: bool = True) -> T:
        """``fn()`` once the breaker, the cap and the rate limit let it through
        (``turn=False``: ``fn`` waits for its turn itself, one :meth:`book` gave, as late
        as it can: an email's right before its data)."""
        state = self._admit_breaker()
        cap = self.section.concurrency
        if cap is not None:
            with self.store.transaction() as tx:
                wait = acquire_slot(tx, self.name, key, cap,
                                    self.section.timeout + SLOT_MARGIN)
            if wait:
                raise Throttled(f"connector {self.name} has {cap} call(s) in flight, its "
                                "cap: waiting for one to end", retry_after=min(wait, SLOT_WAIT))
        try:
            if turn:
                self.take_turn(key)
            return self._observed(state, fn)
        finally:
            if cap is not None:
                with self.store.transaction() as tx:
                    release_slot(tx, self.name, key)

    def take_turn(self, key: str) -> None:
        """Wait for ``key``'s turn of the shared rate limit (see :meth:`book`)."""
        self.wait_turn(self.book(key))

    def book(self, key: str) -> float | None:
        """``key``'s turn of the shared rate limit, when it is within the horizon: the
        moment it comes, on the monotonic clock (None: the connector has no ``rate``). A
        turn further off stays booked for ``key`` in the store, and :class:`Throttled`
        tells the step to come back shortly before it (no attempt spent, no second
        booking).

        The moment is counted from when the store answered, not from the commit: the
        database read its clock before that, so the turn is never early, and the commit's
        own time (an fsync) does not make it late."""
        bucket = self.section.bucket
        if bucket is None:
            return None
        rate, burst = bucket
        with self.store.transaction() as tx:
            wait, due = book_turn(tx, self.name, key, rate, burst, HORIZON)
            answered = time.monotonic()
        if not due:
            raise Throttled(f"connector {self.name} is at its rate limit of {rate:g} a "
                            f"second: its turn comes in {wait:.1f}s",
                            retry_after=max(0.0, wait - LEAD))
        return answered + wait

    def wait_turn(self, turn: float | None) -> None:
        """Sleep until a turn :meth:`book` gave; :class:`Throttled` when it has already
        passed by more than :data:`MISSED` (the process was busy): a call that went now,
        late, would crowd the calls of the turns after it into one second, so it books
        another turn instead."""
        if turn is None:
            return
        wait = turn - time.monotonic()
        if wait < -MISSED:
            raise Throttled(f"connector {self.name}: this call missed its turn of the rate "
                            f"limit by {-wait:.2f}s; waiting for another", retry_after=0.0)
        if wait > 0:
            self._sleep(wait)

    def _admit_breaker(self) -> BreakerRow | None:
        now = time.monotonic()
        if self._breaker is None or now - self._breaker[0] > BREAKER_SECONDS:
            with self.store.read() as tx:
                self._breaker = now, tx.breakers.get(breaker_name(self.name))
        state = self._breaker[1]
        check = before_call(state, self.store.now(), self.breaker)
        if not check.allow:
            raise BreakerOpen(f"connector {self.name} is failing; its circuit breaker is open "
                              f"for {check.wait:.0f}s more", retry_after=check.wait)
        return state

    def _observed(self, state: BreakerRow | None, fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except Throttled:
            raise  # the server is busy, not broken
        except StepFailure as exc:
            opened = self._record(state, ok=False, transient=exc.kind == "transient")
            if opened and exc.kind == "transient":
                raise BreakerOpen(f"{exc.message}; connector {self.name}'s circuit breaker "
                                  f"is now open for {self.breaker.cooldown:g}s",
                                  retry_after=self.breaker.cooldown) from exc
            raise
        self._record(state, ok=True, transient=False)
        return result

    def _record(self, state: BreakerRow | None, *, ok: bool, transient: bool) -> bool:
        """Write the breaker's new state, if it changed; true if it is now open."""
        new = after_call(state, breaker_name(self.name), ok=ok, transient=transient,
                         now=self.store.now(), policy=self.breaker)
        if new is None:
            return False
        with self.store.transaction() as tx:
            tx.breakers.put(new)
        self._breaker = time.monotonic(), new
        return new.state == "open"
