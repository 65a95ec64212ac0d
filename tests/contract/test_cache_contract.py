"""The LLM response cache, through the store's transactions, the same on every backend: the
first response stored under a key is the one kept, and hits are counted."""

from __future__ import annotations

import pytest

from soloist.store.base import Store

NOW = 1_000_000.0

RESPONSE = {"text": "Dear Ada, naïve 100%", "tool_calls": [], "usage": [12, 3], "cost": 0.5}


def hits_of_k1(store: Store) -> int:
    with store.read() as tx:  # the protocol keeps hits for the operator; read them raw
        rows = tx.events.conn.fetch(  # type: ignore[attr-defined]
            "SELECT hits FROM llm_cache WHERE key = 'k1'")
    return int(rows[0]["hits"])


def test_a_response_comes_back_under_its_key(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.cache.get("k1") is None
        tx.cache.put("k1", RESPONSE, NOW)
        assert tx.cache.get("k1") == RESPONSE  # within the same transaction
    with store.read() as tx:
        assert tx.cache.get("k1") == RESPONSE
        assert tx.cache.get("k2") is None


def test_the_first_response_under_a_key_is_kept(store: Store) -> None:
    with store.transaction() as tx:
        tx.cache.put("k1", RESPONSE, NOW)
    with store.transaction() as tx:
        tx.cache.put("k1", {"text": "another"}, NOW + 1)  # a racing writer: not an error
    with store.read() as tx:
        assert tx.cache.get("k1") == RESPONSE


def test_hits_are_counted_and_a_missing_key_is_no_error(store: Store) -> None:
    with store.transaction() as tx:
        tx.cache.put("k1", RESPONSE, NOW)
    assert hits_of_k1(store) == 0
    for _ in range(3):
        with store.transaction() as tx:
            tx.cache.hit("k1")
    with store.transaction() as tx:
        tx.cache.hit("missing")
        assert tx.cache.get("missing") is None
    assert hits_of_k1(store) == 3


def test_a_rolled_back_put_is_not_cached(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.cache.put("k1", RESPONSE, NOW)
        raise RuntimeError("abandon")
    with store.read() as tx:
        assert tx.cache.get("k1") is None
