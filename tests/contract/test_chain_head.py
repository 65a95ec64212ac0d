"""The stored chain head moves with every append, in the same transaction, on both backends."""

from __future__ import annotations

import pytest

from soloist.store.base import ChainHead, NewEvent, Store


def test_the_head_names_the_last_event_committed(store: Store) -> None:
    with store.read() as tx:
        assert tx.events.head() == ChainHead(0, "")
    with store.transaction() as tx:
        tx.events.extend([NewEvent("a", {}), NewEvent("b", {})])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.append(NewEvent("lost", {}))
        raise RuntimeError("abandon")
    with store.read() as tx:
        last = tx.events.scan(0, 10)[-1]
        assert tx.events.head() == ChainHead(2, last.hash) and last.seq == 2
