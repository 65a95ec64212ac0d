"""Access tokens through the store, the same on every backend: found by digest, one live
token per name, a one-time row revoked once, and kept out of snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from soloist.errors import StoreError
from soloist.store.access import TokenRow
from soloist.store.base import Store


def row(id: str, name: str = "ci", kind: str = "token", **kw: object) -> TokenRow:
    fields: dict[str, object] = {"scopes": ("read", "run"), "digest": f"d-{id}",
                                 "created_at": 1.0, "created_by": "person:ada"}
    fields.update(kw)
    return TokenRow(id, name, kind, **fields)  # type: ignore[arg-type]


def test_a_token_is_found_by_its_digest_and_listed(store: Store) -> None:
    with store.transaction() as tx:
        tx.tokens.add(row("t1", expires_at=99.0))
        tx.tokens.add(row("t2", "ada", "session", created_at=2.0))
    with store.read() as tx:
        found = tx.tokens.find("d-t1")
        assert found == row("t1", expires_at=99.0)
        assert tx.tokens.find("nope") is None
        assert [t.id for t in tx.tokens.list()] == ["t1", "t2"]
        assert [t.id for t in tx.tokens.list("session")] == ["t2"]
        assert tx.tokens.live("ci") == found and tx.tokens.live("ada") is None
        assert tx.tokens.live("ada", "session") is not None


def test_one_live_token_per_name(store: Store) -> None:
    with store.transaction() as tx:
        tx.tokens.add(row("t1"))
        tx.tokens.add(row("s1", "ci", "session"))  # another kind may share the name
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.tokens.add(row("t2", digest="d-other"))
    with store.transaction() as tx:
        assert tx.tokens.revoke("t1", 5.0)
        tx.tokens.add(row("t3"))  # the name is free again once revoked
    with store.read() as tx:
        assert tx.tokens.live("ci") == row("t3")
        assert tx.tokens.find("d-t1") == row("t1", revoked_at=5.0)


def test_a_row_is_revoked_once_and_touched(store: Store) -> None:
    with store.transaction() as tx:
        tx.tokens.add(row("l1", "ada", "login"))
    with store.transaction() as tx:
        assert tx.tokens.revoke("l1", 3.0) is True
    with store.transaction() as tx:
        assert tx.tokens.revoke("l1", 4.0) is False  # the second use of a one-time link
        tx.tokens.touch("l1", 7.0)
    with store.read() as tx:
        got = tx.tokens.find("d-l1")
        assert got is not None and got.revoked_at == 3.0 and got.last_used_at == 7.0


def test_a_restore_neither_brings_back_nor_forgets_a_token(store: Store,
                                                           tmp_path: Path) -> None:
    with store.transaction() as tx:
        tx.tokens.add(row("old"))
    store.backup(tmp_path / "snap")
    with store.transaction() as tx:
        tx.tokens.revoke("old", 5.0)
        tx.tokens.add(row("new", "bot"))
    store.restore(tmp_path / "snap")
    with store.read() as tx:
        old = tx.tokens.find("d-old")
        assert old is not None and old.revoked_at == 5.0
        assert tx.tokens.find("d-new") is not None
