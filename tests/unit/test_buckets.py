"""The token bucket and concurrency cap maths: pure, on clocks the tests move by hand."""

from __future__ import annotations

import random

import pytest

from soloist.control.buckets import (
    Slot,
    TokenBucket,
    acquire,
    capacity,
    full,
    live,
    refill,
    release,
    reserve,
    take,
)

T0 = 1_000_000.0


def drain(bucket: TokenBucket, times: list[float]) -> list[float]:
    """Take one token at each time, as fast as asked; the times it was granted."""
    granted: list[float] = []
    for now in times:
        bucket, wait = take(bucket, now)
        if wait == 0:
            granted.append(now)
    return granted


def test_a_new_bucket_grants_its_burst_at_once_then_waits_for_the_rate() -> None:
    bucket = full(rate=2.0, burst=3, now=T0)
    waits = []
    for _ in range(4):
        bucket, wait = take(bucket, T0)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 0.5]
    assert bucket.tokens == 0.0
    bucket, wait = take(bucket, T0 + 0.25)
    assert wait == pytest.approx(0.25)  # half a token there: half the interval left
    bucket, wait = take(bucket, T0 + 0.5)
    assert wait == 0.0


def test_a_wait_is_exactly_long_enough() -> None:
    bucket = full(rate=5.0, burst=10, now=T0)
    bucket, _ = take(bucket, T0, n=10)
    bucket, wait = take(bucket, T0, n=4)
    assert wait == pytest.approx(0.8)
    assert bucket.tokens == 0.0  # nothing taken or reserved by a refusal
    assert take(bucket, T0 + wait, n=4)[1] == 0.0
    assert take(bucket, T0 + wait - 0.01, n=4)[1] > 0.0


def test_it_never_holds_more_than_burst_and_never_less_than_nothing() -> None:
    bucket = full(rate=100.0, burst=5, now=T0)
    assert refill(bucket, T0 + 3600).tokens == 5.0
    rng = random.Random(7)
    now = T0
    for _ in range(5000):
        now += rng.choice([0.0, 0.001, 0.01, 0.2, -0.5])
        bucket, _ = take(bucket, now, n=rng.choice([1, 2, 5]))
        assert 0.0 <= bucket.tokens <= 5.0


def test_over_a_long_window_it_grants_the_configured_rate() -> None:
    rate, burst, window = 5.0, 10, 1000.0
    # Asked 50 times a second, far more than the rate.
    times = [T0 + i * 0.02 for i in range(int(window / 0.02))]
    granted = drain(full(rate, burst, T0), times)
    assert len(granted) == pytest.approx(burst + rate * window, abs=1)
    assert len(granted) / window == pytest.approx(rate, rel=0.01)


def test_no_window_grants_more_than_burst_plus_rate_times_its_length() -> None:
    rate, burst = 5.0, 3
    rng = random.Random(11)
    times, now = [], T0
    for _ in range(20_000):
        now += rng.expovariate(40.0)
        times.append(now)
    granted = drain(full(rate, burst, T0), times)
    assert len(granted) > 1000
    # Every window that starts at a grant: [g_i, g_j] holds j - i + 1 grants.
    for i in range(len(granted)):
        for j in range(i, min(i + 40, len(granted))):
            span = granted[j] - granted[i]
            assert j - i + 1 <= burst + rate * span + 1e-9
    # In particular no window shorter than 1/rate holds more than burst grants.
    for i in range(len(granted) - burst):
        assert granted[i + burst] - granted[i] >= 1 / rate - 1e-9


def test_a_clock_going_backwards_refills_nothing_and_takes_nothing_back() -> None:
    bucket = full(rate=1.0, burst=2, now=T0)
    bucket, _ = take(bucket, T0, n=2)
    back = refill(bucket, T0 - 100)
    assert back.tokens == 0.0 and back.updated_at == T0
    # A reading behind the bucket's latest moment waits as long as one at that moment.
    assert take(bucket, T0 - 100)[1] == pytest.approx(1.0 + 100)
    assert take(bucket, T0)[1] == pytest.approx(1.0)
    # Back and forth between two hosts' clocks grants no more than the later one alone.
    ahead, behind = T0 + 10, T0 + 5
    for now in [ahead, behind, ahead, behind]:
        bucket, _ = take(bucket, now)
    assert refill(bucket, ahead).tokens == 0.0
    assert bucket.updated_at == ahead


def test_a_take_larger_than_the_burst_or_a_bad_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="burst 3"):
        take(full(1.0, 3, T0), T0, n=4)
    with pytest.raises(ValueError, match="rate > 0"):
        full(0.0, 3, T0)
    with pytest.raises(ValueError, match="burst >= 1"):
        full(1.0, 0, T0)


def test_a_cap_admits_that_many_holders_and_says_when_one_frees() -> None:
    slots: tuple[Slot, ...] = ()
    for i, holder in enumerate(["a", "b"]):
        slots, wait = acquire(slots, holder, T0 + i, cap=2, lease=30)
        assert wait == 0.0
    refused, wait = acquire(slots, "c", T0 + 5, cap=2, lease=30)
    assert refused == slots and wait == pytest.approx(25.0)  # a's lease ends at T0 + 30
    slots = release(slots, "a")
    slots, wait = acquire(slots, "c", T0 + 5, cap=2, lease=30)
    assert wait == 0.0 and {s.holder for s in slots} == {"b", "c"}


def test_asking_again_renews_ones_own_slot() -> None:
    slots, _ = acquire((), "a", T0, cap=1, lease=10)
    slots, wait = acquire(slots, "a", T0 + 8, cap=1, lease=10)
    assert wait == 0.0 and slots == (Slot("a", T0 + 18),)


def test_a_crashed_holders_slot_comes_back_when_its_lease_ends() -> None:
    slots, _ = acquire((), "crashed", T0, cap=1, lease=10)
    assert acquire(slots, "next", T0 + 9.9, cap=1, lease=10)[1] == pytest.approx(0.1)
    slots, wait = acquire(slots, "next", T0 + 10, cap=1, lease=10)
    assert wait == 0.0 and slots == (Slot("next", T0 + 20),)
    assert live(slots, T0 + 20) == ()


def test_a_bad_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="cap >= 1"):
        acquire((), "a", T0, cap=0, lease=10)
    with pytest.raises(ValueError, match="lease > 0"):
        acquire((), "a", T0, cap=1, lease=0)


# -- reservations and "burst" as the most calls in any one second -----------------------


def turns(rate: float, burst: float, callers: int, seconds: float,
          horizon: float = 1.0) -> list[float]:
    """Callers that reserve, wait for their turn, and come back (late, at random) for the
    next: the moments their turns were given."""
    rng = random.Random(7)
    bucket = full(rate, capacity(rate, burst), T0)
    asks = [T0 + rng.random() * 0.01 for _ in range(callers)]
    granted: list[float] = []
    while True:
        i = min(range(callers), key=asks.__getitem__)
        now = asks[i]
        if now > T0 + seconds:
            return granted
        bucket, wait, reserved = reserve(bucket, now, horizon)
        if reserved:
            granted.append(now + wait)
        # the caller comes back after its turn (or after the wait), a little late
        asks[i] = now + wait + rng.random() * 0.05


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered[i:] if t < start + 1.0)
               for i, start in enumerate(ordered))


@pytest.mark.parametrize(("rate", "burst"), [(5, 5), (5, 8), (2.5, 3), (0.5, 1)])
def test_reserved_turns_never_put_more_than_burst_in_any_second(rate: float,
                                                                burst: float) -> None:
    granted = turns(rate, burst, callers=12, seconds=30)
    assert most_in_one_second(granted) <= burst


def test_reserved_turns_keep_the_rate_however_late_callers_come_back() -> None:
    granted = [t for t in turns(5, 5, callers=12, seconds=40) if T0 + 10 <= t < T0 + 30]
    assert len(granted) == pytest.approx(100, abs=1)


def test_a_turn_beyond_the_horizon_takes_nothing_and_says_when_to_ask_again() -> None:
    bucket = full(5, capacity(5, 5), T0)
    bucket, wait, reserved = reserve(bucket, T0, horizon=0.5)
    assert (wait, reserved) == (0.0, True)
    for expected in (0.2, 0.4):
        bucket, wait, reserved = reserve(bucket, T0, horizon=0.5)
        assert reserved and wait == pytest.approx(expected)
    after, wait, reserved = reserve(bucket, T0, horizon=0.5)
    assert not reserved and wait == pytest.approx(0.1)
    assert after.tokens == pytest.approx(bucket.tokens)


def test_capacity_is_burst_less_the_rate_plus_one_and_never_below_one() -> None:
    assert capacity(5, 5) == 1
    assert capacity(5, 8) == 4
    assert capacity(0.5, 1) == 1.5
    assert capacity(10, 2) == 1
