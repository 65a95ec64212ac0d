"""Connector state through the store, the same on every backend: cursors advanced by
compare-and-set, token buckets and concurrency slots shared by every worker on the
database's clock, and bounded inbound backlogs that deduplicate deliveries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from soloist.control.buckets import acquire_slot, release_slot, take_token
from soloist.store.base import Store
from soloist.store.connectors import BucketRow, SlotRow


def db_now(store: Store) -> float:
    with store.transaction() as tx:
        return tx.buckets.lock_bucket("clock")[1]


# -- cursors ---------------------------------------------------------------------------------

def test_a_cursor_is_written_once_then_advanced_by_the_version_it_was_read_at(
        store: Store) -> None:
    before = db_now(store)
    with store.read() as tx:
        assert tx.cursors.get("mail", "INBOX") is None and tx.cursors.list() == []
    with store.transaction() as tx:
        first = tx.cursors.put("mail", "INBOX", {"uidvalidity": 7, "uid": 10}, None)
    assert first is not None and first.version == 1 and first.value == {"uidvalidity": 7,
                                                                          "uid": 10}
    assert first.updated_at >= before  # the database's clock, not the caller's
    with store.transaction() as tx:
        second = tx.cursors.put("mail", "INBOX", {"uidvalidity": 7, "uid": 42}, 1)
    assert second is not None and second.version == 2 and second.updated_at >= first.updated_at
    with store.read() as tx:
        assert tx.cursors.get("mail", "INBOX") == second


def test_the_loser_of_two_writes_from_one_version_is_told_and_changes_nothing(
        store: Store) -> None:
    with store.transaction() as tx:
        assert tx.cursors.put("git", "refs/heads/main", "abc", None) is not None
        # A second first write is a conflict too, not an overwrite.
        assert tx.cursors.put("git", "refs/heads/main", "zzz", None) is None
    with store.transaction() as tx:
        assert tx.cursors.put("git", "refs/heads/main", "def", 1) is not None
    with store.transaction() as tx:
        assert tx.cursors.put("git", "refs/heads/main", "fed", 1) is None  # read at 1: stale
    with store.read() as tx:
        row = tx.cursors.get("git", "refs/heads/main")
    assert row is not None and (row.value, row.version) == ("def", 2)


def test_two_workers_advancing_one_cursor_at_once_only_one_wins(
        store: Store, open_another: Callable[[], Store]) -> None:
    with store.transaction() as tx:
        tx.cursors.put("cal", "work", {"sync_token": "t0"}, None)
    stores = [store, open_another()]
    results: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def advance(s: Store, token: str) -> None:
        barrier.wait()
        with s.transaction() as tx:
            results.append(tx.cursors.put("cal", "work", {"sync_token": token}, 1) is not None)

    threads = [threading.Thread(target=advance, args=(s, f"t{i + 1}"))
               for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    with store.read() as tx:
        row = tx.cursors.get("cal", "work")
    assert row is not None and row.version == 2


def test_cursors_are_listed_by_connector_and_source(store: Store) -> None:
    with store.transaction() as tx:
        tx.cursors.put("mail", "Sent", 1, None)
        tx.cursors.put("cal", "home", 2, None)
        tx.cursors.put("mail", "INBOX", 3, None)
    with store.read() as tx:
        assert [(c.connector, c.source) for c in tx.cursors.list()] == [
            ("cal", "home"), ("mail", "INBOX"), ("mail", "Sent")]
        assert [c.source for c in tx.cursors.list("mail")] == ["INBOX", "Sent"]


# -- buckets and slots -----------------------------------------------------------------------

def test_a_shared_bucket_grants_its_burst_then_says_how_long_to_wait(store: Store) -> None:
    with store.transaction() as tx:
        waits = [take_token(tx, "smtp", rate=1.0, burst=3) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0 < waits[3] <= 1.0  # a token a second; some of it may have passed already
    with store.read() as tx:
        (row,) = tx.buckets.buckets()
    assert row.name == "smtp" and 0 <= row.tokens < 1


def test_a_bucket_refills_on_the_database_clock(store: Store) -> None:
    with store.transaction() as tx:
        now = tx.buckets.lock_bucket("api")[1]
        # As if emptied 500 s ago: refilled by the database's clock since, a token in 100 s.
        tx.buckets.put_bucket(BucketRow("api", 0.0, now - 500))
    with store.transaction() as tx:
        assert take_token(tx, "api", rate=0.01, burst=10, n=5) == 0.0
        assert 0 < take_token(tx, "api", rate=0.01, burst=10, n=1) <= 100


def test_a_bucket_stamped_ahead_of_the_database_clock_grants_nothing_early(
        store: Store) -> None:
    with store.transaction() as tx:
        now = tx.buckets.lock_bucket("api")[1]
        tx.buckets.put_bucket(BucketRow("api", 0.0, now + 60))  # another clock, ahead
    with store.transaction() as tx:
        assert take_token(tx, "api", rate=1.0, burst=5) > 1.0  # its 60 s count too
    with store.read() as tx:
        assert tx.buckets.buckets()[0].updated_at == now + 60  # never moved back


def test_slots_cap_the_holders_and_a_lapsed_lease_frees_its_slot(store: Store) -> None:
    with store.transaction() as tx:
        assert acquire_slot(tx, "stripe", "w1", cap=2, lease=30) == 0.0
        assert acquire_slot(tx, "stripe", "w2", cap=2, lease=30) == 0.0
        wait = acquire_slot(tx, "stripe", "w3", cap=2, lease=30)
    assert 0 < wait <= 30  # until w1's lease ends
    with store.transaction() as tx:
        assert release_slot(tx, "stripe", "w1") is True
        assert release_slot(tx, "stripe", "w1") is False
        assert acquire_slot(tx, "stripe", "w3", cap=2, lease=30) == 0.0
    with store.transaction() as tx:
        now = tx.buckets.lock_slots("stripe")[1]
        tx.buckets.put_slot(SlotRow("stripe", "w2", now - 1))  # w2 crashed, its lease over
    with store.transaction() as tx:
        assert acquire_slot(tx, "stripe", "w4", cap=2, lease=30) == 0.0
    with store.read() as tx:
        assert [s.holder for s in tx.buckets.slots("stripe")] == ["w3", "w4"]
        assert [s.holder for s in tx.buckets.slots()] == ["w3", "w4"]


def test_renewing_a_slot_moves_its_expiry_on(store: Store) -> None:
    with store.transaction() as tx:
        acquire_slot(tx, "git", "w1", cap=1, lease=5)
    with store.read() as tx:
        (first,) = tx.buckets.slots("git")
    with store.transaction() as tx:
        assert acquire_slot(tx, "git", "w1", cap=1, lease=50) == 0.0
    with store.read() as tx:
        (renewed,) = tx.buckets.slots("git")
    assert renewed.expires_at > first.expires_at + 40


# -- inbound backlogs ------------------------------------------------------------------------

def test_an_event_is_accepted_once_and_a_redelivery_is_a_duplicate(store: Store) -> None:
    before = db_now(store)
    with store.transaction() as tx:
        first = tx.inbound.accept("stripe", "evt_1", {"type": "invoice.paid"}, limit=10)
        again = tx.inbound.accept("stripe", "evt_1", {"type": "changed"}, limit=10)
        other = tx.inbound.accept("github", "evt_1", {"ref": "main"}, limit=10)
    assert first.outcome == "accepted" and first.id is not None
    assert again.outcome == "duplicate" and again.id == first.id
    assert other.outcome == "accepted"  # unique per source only
    with store.read() as tx:
        assert tx.inbound.backlog("stripe") == 1
    with store.transaction() as tx:
        (row,) = tx.inbound.take_batch("stripe", 10)
    assert row.payload == {"type": "invoice.paid"} and row.delivery_id == "evt_1"
    assert row.received_at >= before and row.processed_at is None


def test_a_full_backlog_refuses_new_events_until_some_are_processed(store: Store) -> None:
    with store.transaction() as tx:
        ids = [tx.inbound.accept("hooks", f"d{i}", {"i": i}, limit=3).id for i in range(3)]
        full = tx.inbound.accept("hooks", "d3", {"i": 3}, limit=3)
        # A redelivery of an event already stored is still recognised when full.
        assert tx.inbound.accept("hooks", "d0", {"i": 0}, limit=3).outcome == "duplicate"
    assert full.outcome == "full" and full.id is None
    with store.transaction() as tx:
        batch = tx.inbound.take_batch("hooks", 2)
        assert [r.id for r in batch] == ids[:2]  # oldest first
        assert tx.inbound.mark_processed([r.id for r in batch]) == 2
        assert tx.inbound.mark_processed([batch[0].id]) == 0  # already processed
        assert tx.inbound.backlog("hooks") == 1
        assert tx.inbound.accept("hooks", "d3", {"i": 3}, limit=3).outcome == "accepted"
        assert tx.inbound.accept("hooks", "d4", {"i": 4}, limit=3).outcome == "accepted"
        assert tx.inbound.accept("hooks", "d5", {"i": 5}, limit=3).outcome == "full"
        # A processed event's delivery id is still a duplicate: it is never taken twice.
        assert tx.inbound.accept("hooks", "d1", {"i": 1}, limit=3).outcome == "duplicate"
        tx.inbound.accept("mail", "m1", {}, limit=3)
        assert tx.inbound.backlogs() == {"hooks": 3, "mail": 1}
    with store.transaction() as tx:
        assert [r.delivery_id for r in tx.inbound.take_batch("hooks", 10)] == ["d2", "d3", "d4"]


def test_concurrent_receivers_never_grow_a_backlog_past_its_limit(
        store: Store, open_another: Callable[[], Store]) -> None:
    stores = [store, open_another(), open_another()]
    outcomes: list[str] = []
    lock = threading.Lock()

    def receive(s: Store, worker: int) -> None:
        for i in range(10):
            with s.transaction() as tx:
                # Each delivery arrives at two receivers, as a sender's retry would.
                got = tx.inbound.accept("hooks", f"d{(worker * 10 + i) % 20}", {}, limit=12)
            with lock:
                outcomes.append(got.outcome)

    threads = [threading.Thread(target=receive, args=(s, w)) for w, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.transaction() as tx:
        assert tx.inbound.backlog("hooks") == 12
        delivered = [r.delivery_id for r in tx.inbound.take_batch("hooks", 100)]
    assert len(set(delivered)) == len(delivered) == outcomes.count("accepted") == 12


def test_two_consumers_never_take_the_same_events(
        store: Store, open_another: Callable[[], Store], store_url: str) -> None:
    with store.transaction() as tx:
        ids = [tx.inbound.accept("mail", f"m{i}", {"uid": i}, limit=10).id for i in range(5)]
    other = open_another()
    taken: list[list[int]] = []

    def consume(s: Store) -> None:
        with s.transaction() as tx:
            batch = [r.id for r in tx.inbound.take_batch("mail", 3)]
            tx.inbound.mark_processed(batch)
            taken.append(batch)

    if store_url.startswith("postgres"):
        # At the same time: the second consumer skips the rows the first holds locked.
        with store.transaction() as tx:
            batch = [r.id for r in tx.inbound.take_batch("mail", 3)]
            consume(other)
            tx.inbound.mark_processed(batch)
            taken.insert(0, batch)
    else:
        # One writer at a time: the second consumer begins once the first has committed.
        consume(store)
        consume(other)
    assert taken == [ids[:3], ids[3:]]
    with store.read() as tx:
        assert tx.inbound.backlog("mail") == 0 and tx.inbound.backlogs() == {}


# -- all or nothing --------------------------------------------------------------------------

def test_a_rolled_back_transaction_leaves_no_connector_state(store: Store) -> None:
    with store.transaction() as tx:
        tx.cursors.put("mail", "INBOX", 1, None)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.cursors.put("mail", "INBOX", 2, 1)
        tx.cursors.put("cal", "home", "t", None)
        take_token(tx, "smtp", rate=1.0, burst=1)
        acquire_slot(tx, "smtp", "w1", cap=1, lease=30)
        tx.inbound.accept("hooks", "d1", {}, limit=5)
        raise RuntimeError("the worker stopped half-way")
    with store.read() as tx:
        row = tx.cursors.get("mail", "INBOX")
        assert row is not None and (row.value, row.version) == (1, 1)
        assert [c.source for c in tx.cursors.list()] == ["INBOX"]
        assert tx.buckets.buckets() == [] and tx.buckets.slots() == []
        assert tx.inbound.backlog("hooks") == 0
    with store.transaction() as tx:
        assert tx.inbound.accept("hooks", "d1", {}, limit=5).outcome == "accepted"
        assert take_token(tx, "smtp", rate=1.0, burst=1) == 0.0


# -- many workers on one bucket --------------------------------------------------------------

RATE, BURST = 20.0, 5


def test_workers_sharing_a_bucket_never_get_more_than_burst_plus_rate_times_the_window(
        store: Store, open_another: Callable[[], Store]) -> None:
    """Four workers, each with its own store (its own connection), take tokens as fast as
    they can for a while. Each grant is stamped with the moment the bucket decided it (the
    row's ``updated_at``, read in the same locked transaction: the database's clock), and
    no window between two grants holds more than the maths allows, with no slack."""
    stores = [store, *(open_another() for _ in range(3))]
    grants: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 1.5

    def work(s: Store) -> None:
        while time.monotonic() < stop:
            with s.transaction() as tx:
                wait = take_token(tx, "smtp", rate=RATE, burst=BURST)
                row = tx.buckets.lock_bucket("smtp")[0]
            assert row is not None
            if wait == 0:
                with lock:
                    grants.append(row.updated_at)
            else:
                time.sleep(min(wait, 0.01))

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grants.sort()
    assert len(grants) > BURST
    for i in range(len(grants)):
        for j in range(i + 1, len(grants)):
            window = grants[j] - grants[i]
            assert j - i + 1 <= BURST + RATE * window + 1e-6, (i, j, window)
