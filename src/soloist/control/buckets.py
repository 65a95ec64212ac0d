"""Rate limits (token buckets) and concurrency caps, one per connector, shared by every worker.

Pure decisions over small frozen values, times in epoch seconds passed in, as for the
breakers. The store keeps the state (``tx.buckets``) and locks it while one worker decides,
with the time read from the database's clock after the lock, so that every worker on every
host draws from one bucket and clock skew between hosts cannot widen it. The functions at
the end (:func:`take_token`, :func:`book_turn`, :func:`acquire_slot`,
:func:`release_slot`) are that round trip: lock, decide here, write back, all in the
caller's transaction.

A bucket holds at most ``burst`` tokens and gains ``rate`` a second, continuously. Taking
``n`` when it holds ``n`` or more grants at once (wait 0); otherwise nothing is taken and
the answer is how long until it will hold ``n``. So over any window of ``w`` seconds at
most ``burst + rate * w`` tokens are granted. A clock that goes backwards (another host's
reading, a stepped clock) refills nothing and never un-refills: time only counts forward
from the latest moment the bucket has seen.

What a connector's settings call ``burst`` is the most calls in any one second, which is
what a person means by it; the bucket that keeps that promise holds
:func:`capacity` = ``burst - rate + 1`` tokens (at least one): a full bucket lets that
many through at once, and the ``rate - 1`` that refill within the same second bring the
second's count to ``burst``, never more.

A caller that can wait a little reserves instead of asking again (:func:`reserve`, the
way a metronome works): the token is taken now, the bucket goes below zero, and the
caller is told when its turn comes, up to ``horizon`` seconds ahead. The turns handed out
are exactly the moments an ideal bucket would grant, so the measured rate does not fall
behind the configured one by the time callers take to come back.

A caller whose turn is further off than it can wait for in its thread *books* it
(:func:`book_turn`): the token is taken, the turn is kept in the store under the caller's
name (its idempotency key), and the caller comes back for it. Each waiting caller thus
asks twice, not once per refill: a queue of a thousand emails at five a second costs a
thousand bookings, not a thousand callers asking five times a second.

A concurrency cap admits at most ``cap`` holders at once; each slot has an expiry (a
lease), so the slot of a worker that crashed comes back when its lease ends. A holder that
asks again renews its own slot rather than taking a second one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from soloist.store.base import Transaction
from soloist.store.connectors import BucketRow, SlotRow


@dataclass(frozen=True, slots=True)
class TokenBucket:
    rate: float  # tokens a second
    burst: float  # the most it holds
    tokens: float
    updated_at: float  # the latest moment it has seen

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.burst >= 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not "
                             f"rate={self.rate} and burst={self.burst}")


def full(rate: float, burst: float, now: float) -> TokenBucket:
    """A bucket never used yet: it starts full."""
    return TokenBucket(rate, burst, float(burst), now)


def refill(state: TokenBucket, now: float) -> TokenBucket:
    """The bucket at ``now``: what it gained since it was last seen, up to ``burst``."""
    elapsed = max(0.0, now - state.updated_at)
    tokens = min(float(state.burst), state.tokens + elapsed * state.rate)
    return TokenBucket(state.rate, state.burst, tokens, max(state.updated_at, now))


def take(state: TokenBucket, now: float, n: float = 1) -> tuple[TokenBucket, float]:
    """Take ``n`` tokens: (the new state, 0) if granted, else (the refilled state, seconds
    until ``n`` are there); nothing is taken or reserved when the answer is to wait."""
    if not 0 < n <= state.burst:
        raise ValueError(f"cannot take {n} tokens from a bucket of burst {state.burst}")
    current = refill(state, now)
    if current.tokens >= n:
        return (TokenBucket(current.rate, current.burst, current.tokens - n,
                            current.updated_at), 0.0)
    # Measured from the bucket's own latest moment: a reading behind it waits no less.
    wait = (n - current.tokens) / current.rate + (current.updated_at - now)
    return current, max(wait, 0.0)


def capacity(rate: float, burst: float) -> float:
    """The tokens a bucket holds so that at most ``burst`` calls fall in any one second
    at ``rate`` calls a second (``burst`` below ``rate`` cannot be kept: one token)."""
    return max(1.0, float(burst) - rate + 1.0)


def reserve(state: TokenBucket, now: float, horizon: float,
            n: float = 1) -> tuple[TokenBucket, float, bool]:
    """Take ``n`` tokens for a turn at most ``horizon`` seconds ahead: (the new state,
    seconds until the turn, True); or, when the turn is further off, (the refilled state,
    seconds until a reservation would fall within the horizon, False), nothing taken."""
    if not 0 < n <= state.burst:
        raise ValueError(f"cannot take {n} tokens from a bucket of burst {state.burst}")
    current = refill(state, now)
    behind = current.updated_at - now  # a reading behind the bucket's latest moment
    if current.tokens >= n:
        return (TokenBucket(current.rate, current.burst, current.tokens - n,
                            current.updated_at), 0.0, True)
    turn = (n - current.tokens) / current.rate + behind
    if turn <= horizon:
        return (TokenBucket(current.rate, current.burst, current.tokens - n,
                            current.updated_at), max(0.0, turn), True)
    return current, max(0.0, turn - horizon), False


@dataclass(frozen=True, slots=True)
class Slot:
    holder: str
    expires_at: float


def live(slots: Sequence[Slot], now: float) -> tuple[Slot, ...]:
    """The slots whose lease has not ended."""
    return tuple(s for s in slots if s.expires_at > now)


def acquire(slots: Sequence[Slot], holder: str, now: float, cap: int,
            lease: float) -> tuple[tuple[Slot, ...], float]:
    """Take (or renew) ``holder``'s slot until ``now + lease``: (the new slots, 0) if
    granted, else (the live slots, seconds until the first lease ends)."""
    if cap < 1 or not lease > 0:
        raise ValueError(f"a concurrency cap needs cap >= 1 and a lease > 0, not cap={cap} "
                         f"and lease={lease}")
    others = tuple(s for s in live(slots, now) if s.holder != holder)
    if len(others) >= cap:
        return others, max(0.0, min(s.expires_at for s in others) - now)
    return (*others, Slot(holder, now + lease)), 0.0


def release(slots: Sequence[Slot], holder: str) -> tuple[Slot, ...]:
    return tuple(s for s in slots if s.holder != holder)


# -- the shared state, through the store ----------------------------------------------------


def take_token(tx: Transaction, name: str, rate: float, burst: float, n: float = 1) -> float:
    """Take ``n`` tokens from connector ``name``'s shared bucket: 0 if granted, else the
    seconds to wait (nothing taken). Decided on the database's clock, under its lock."""
    row, now = tx.buckets.lock_bucket(name)
    state = (full(rate, burst, now) if row is None
             else TokenBucket(rate, burst, min(row.tokens, float(burst)), row.updated_at))
    new, wait = take(state, now, n)
    tx.buckets.put_bucket(BucketRow(name, new.tokens, new.updated_at))
    return wait


def shared(row: BucketRow | None, rate: float, burst: float, now: float) -> TokenBucket:
    """The bucket a stored row stands for (``burst``: the most calls in any second); one
    never used starts full."""
    size = capacity(rate, burst)
    if row is None:
        return full(rate, size, now)
    return TokenBucket(rate, size, min(row.tokens, size), row.updated_at)


#: a booked turn whose holder has not come for it this long after it is given up
BOOKING_GRACE = 60.0


def bookings_of(name: str) -> str:
    """Where the turns booked on connector ``name``'s bucket are kept (as slots)."""
    return f"{name}:turns"


def book_turn(tx: Transaction, name: str, holder: str, rate: float, burst: float,
              horizon: float) -> tuple[float, bool]:
    """``holder``'s turn of connector ``name``'s shared bucket: (seconds until it, True)
    when it falls within ``horizon`` (the booking, if any, is used up: the caller waits
    and acts), else (seconds until it, False): the turn stays booked for the holder, who
    should come back shortly before it. On the database's clock, under the locks."""
    booked, now = tx.buckets.lock_slots(bookings_of(name))
    mine = next((b for b in booked if b.holder == holder), None)
    stale = [b.holder for b in booked if b.expires_at < now - BOOKING_GRACE]
    if mine is not None and mine.holder not in stale:
        if mine.expires_at - now > horizon:
            return mine.expires_at - now, False
        tx.buckets.drop_slots(bookings_of(name), [holder, *stale])
        return max(0.0, mine.expires_at - now), True
    if stale:
        tx.buckets.drop_slots(bookings_of(name), stale)
    row, now = tx.buckets.lock_bucket(name)
    new, wait, _ = reserve(shared(row, rate, burst, now), now, math.inf)
    tx.buckets.put_bucket(BucketRow(name, new.tokens, new.updated_at))
    if wait <= horizon:
        return wait, True
    tx.buckets.put_slot(SlotRow(bookings_of(name), holder, now + wait))
    return wait, False


def acquire_slot(tx: Transaction, name: str, holder: str, cap: int, lease: float) -> float:
    """Take or renew ``holder``'s slot under connector ``name``'s cap for ``lease`` seconds
    of the database's clock: 0 if granted, else the seconds until a lease ends."""
    rows, now = tx.buckets.lock_slots(name)
    before = [Slot(r.holder, r.expires_at) for r in rows]
    after, wait = acquire(before, holder, now, cap, lease)
    gone = {s.holder for s in before} - {s.holder for s in after}
    tx.buckets.drop_slots(name, sorted(gone))
    if not wait:
        mine = next(s for s in after if s.holder == holder)
        tx.buckets.put_slot(SlotRow(name, holder, mine.expires_at))
    return wait


def release_slot(tx: Transaction, name: str, holder: str) -> bool:
    """Give ``holder``'s slot back; false if it held none (its lease had ended)."""
    rows, now = tx.buckets.lock_slots(name)
    held = any(r.holder == holder and r.expires_at > now for r in rows)
    tx.buckets.drop_slots(name, [holder])
    return held
