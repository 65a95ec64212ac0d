"""Circuit breakers' state, through the store's transactions, the same on every backend:
one row per name, replaced whole by each put, listed by name."""

from __future__ import annotations

import pytest

from soloist.store.base import BreakerRow, Store

NOW = 1_000_000.0


def test_put_get_and_all(store: Store) -> None:
    with store.read() as tx:
        assert tx.breakers.get("openai") is None and tx.breakers.all() == []
    opened = BreakerRow("openai", "open", 5, NOW, NOW)
    with store.transaction() as tx:
        tx.breakers.put(BreakerRow("openai", "closed", 1, None, NOW - 10))
        tx.breakers.put(opened)  # replaces the row whole
        tx.breakers.put(BreakerRow("http:api.example.com", "closed", 0, None, NOW))
    with store.read() as tx:
        assert tx.breakers.get("openai") == opened
        assert [b.name for b in tx.breakers.all()] == ["http:api.example.com", "openai"]
    half_open = BreakerRow("openai", "half_open", 5, NOW, NOW + 30.5)
    with store.transaction() as tx:
        tx.breakers.put(half_open)
    with store.read() as tx:
        assert tx.breakers.get("openai") == half_open
    closed = BreakerRow("openai", "closed", 0, None, NOW + 31)
    with store.transaction() as tx:
        tx.breakers.put(closed)  # opened_at goes back to none
    with store.read() as tx:
        assert tx.breakers.all()[1] == closed


def test_a_rolled_back_put_changes_nothing(store: Store) -> None:
    with store.transaction() as tx:
        tx.breakers.put(BreakerRow("openai", "closed", 0, None, NOW))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.breakers.put(BreakerRow("openai", "open", 5, NOW, NOW))
        raise RuntimeError("abandon")
    with store.read() as tx:
        assert tx.breakers.get("openai") == BreakerRow("openai", "closed", 0, None, NOW)
