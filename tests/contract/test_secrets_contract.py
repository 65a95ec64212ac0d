"""Secrets, through the store's transactions, the same on every backend: sealed values kept
as given, one row per name, listed by name. (Their stamp: ``test_secrets_stamp.py``.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from soloist.store.base import SecretRow, Store

NOW = 1_000_000.0


def test_put_get_all_and_delete(store: Store) -> None:
    with store.read() as tx:
        assert tx.secrets.get("stripe") is None and tx.secrets.all() == []
    with store.transaction() as tx:
        tx.secrets.put("stripe", "sealed-1", NOW, "person:ada")
        tx.secrets.put("github", "sealed-2", NOW + 1, "person:bob")
        tx.secrets.put("stripe", "sealed-3", NOW + 2, "person:bob")  # replaces the value
    with store.read() as tx:
        assert tx.secrets.get("stripe") == SecretRow("stripe", "sealed-3", NOW + 2, "person:bob")
        assert [s.name for s in tx.secrets.all()] == ["github", "stripe"]
    with store.transaction() as tx:
        assert tx.secrets.delete("stripe")
        assert not tx.secrets.delete("stripe")
    with store.read() as tx:
        assert tx.secrets.all() == [SecretRow("github", "sealed-2", NOW + 1, "person:bob")]


def test_a_rolled_back_put_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.secrets.put("stripe", "sealed", NOW, "t")
        raise RuntimeError("abandon")
    with store.read() as tx:
        assert tx.secrets.get("stripe") is None


class HideHunter2:
    """A redactor that hides one secret value, as the secret service's does."""

    def __init__(self) -> None:
        self.stamps: list[str] = []

    def redactor(self, stamp: str,
                 rows: Callable[[], list[SecretRow]]) -> Callable[[str], str] | None:
        self.stamps.append(stamp)
        rows()  # readable in the writer's transaction
        return lambda text: text.replace("hunter2", "[password]")

    def last(self) -> Callable[[str], str] | None:
        return None


def test_the_sealed_value_passes_the_redactor_untouched(store: Store) -> None:
    redaction = HideHunter2()
    store.redaction = redaction
    with store.transaction() as tx:
        tx.secrets.put("db", "sealed:hunter2", NOW, "hunter2-bot")
    with store.read() as tx:
        row = tx.secrets.get("db")
    assert row == SecretRow("db", "sealed:hunter2", NOW, "[password]-bot")
    assert len(redaction.stamps) == 1 and redaction.stamps[0]  # asked once, with the stamp
