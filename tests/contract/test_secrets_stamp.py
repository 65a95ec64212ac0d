"""The secrets' stamp, on both backends: every change of the secrets renews it in the same
transaction (the redactor of every process reloads on it), nothing else does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from soloist.store.base import Store


def stamp(store: Store) -> str:
    with store.read() as tx:
        return tx.secrets.stamp()


def test_every_change_of_the_secrets_renews_the_stamp(store: Store,
                                                      open_another: Callable[[], Store]) -> None:
    first = stamp(store)
    assert first and stamp(store) == first  # stable while nothing changes
    with store.transaction() as tx:
        tx.secrets.put("a", "sealed-a", 1.0, "t")
        assert tx.secrets.stamp() != first  # already inside the transaction
    second = stamp(store)
    assert second != first
    assert stamp(open_another()) == second  # what another process sees
    with store.transaction() as tx:
        assert not tx.secrets.delete("missing")
    assert stamp(store) == second  # deleting nothing changes nothing
    with store.transaction() as tx:
        tx.secrets.put("a", "sealed-a2", 2.0, "t")
    third = stamp(store)
    assert third not in (first, second)
    with store.transaction() as tx:
        assert tx.secrets.delete("a")
    assert stamp(store) not in (first, second, third)


def test_a_rolled_back_change_keeps_the_stamp(store: Store) -> None:
    before = stamp(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.secrets.put("a", "sealed-a", 1.0, "t")
        raise RuntimeError("abandon")
    assert stamp(store) == before
    with store.read() as tx:
        assert tx.secrets.all() == []
