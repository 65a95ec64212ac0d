"""Driver errors become Soloist errors that say what happened, the same on every backend.

A duplicate key is a :class:`UniqueViolation` naming its table and columns (and the
constraint: PostgreSQL's name, or ``table(columns)`` on SQLite, which names none), so a
caller can tell an idempotency hit from any other failure of the store. A write that
waits too long for another connection's lock is a transient :class:`StoreConflict`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from test_store import make_intent, make_run, make_step

from soloist.errors import StoreConflict, StoreError, UniqueViolation, classify
from soloist.store import open_store, sqlite_path
from soloist.store.base import Store


def test_a_run_inserted_twice_is_a_unique_violation_of_its_primary_key(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("r1"))
    with pytest.raises(UniqueViolation) as caught, store.transaction() as tx:
        tx.runs.insert(make_run("r1"))
    error = caught.value
    assert (error.table, error.columns) == ("runs", ("id",))
    assert error.constraint in ("runs_pkey", "runs(id)")
    assert error.constraint in error.message
    assert classify(error) == "deterministic"  # the same write would collide again
    with store.read() as tx:
        assert [r.id for r in tx.runs.list()] == ["r1"]  # the first one, untouched


def test_a_step_added_twice_to_a_run_names_both_columns_of_its_key(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("r1"))
        tx.steps.insert_many([make_step("a")])
    with pytest.raises(UniqueViolation) as caught, store.transaction() as tx:
        tx.steps.insert_many([make_step("b"), make_step("a", position=1)])
    error = caught.value
    assert (error.table, error.columns) == ("steps", ("run_id", "step_id"))
    assert error.constraint in error.message
    with store.read() as tx:  # the whole transaction was undone, "b" with it
        assert [s.step_id for s in tx.steps.for_run("r1")] == ["a"]


def test_an_idempotency_key_used_by_another_intent_is_told_apart(store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("r1"))
        tx.intents.insert_many([make_intent(0, key="k")])
    with pytest.raises(UniqueViolation) as caught, store.transaction() as tx:
        tx.intents.insert_many([make_intent(0, key="k", step_id="other")])
    error = caught.value
    assert (error.table, error.columns) == ("intents", ("idempotency_key",))
    assert error.constraint in ("intents_idempotency_key_key", "intents(idempotency_key)")
    assert "a@b.c" not in error.message  # the key's row is not quoted back


def test_a_violation_caught_inside_the_transaction_still_refuses_the_commit(
        store: Store) -> None:
    with store.transaction() as tx:
        tx.runs.insert(make_run("r1"))
    with pytest.raises(StoreError, match="aborted by an earlier error") as caught, \
            store.transaction() as tx:
        tx.runs.insert(make_run("r2"))
        with pytest.raises(UniqueViolation):
            tx.runs.insert(make_run("r1"))
    assert not isinstance(caught.value, UniqueViolation)
    assert isinstance(caught.value.__cause__, UniqueViolation)
    with store.read() as tx:
        assert [r.id for r in tx.runs.list()] == ["r1"]


# -- a lock held by another connection -------------------------------------------------


def impatient(url: str) -> str:
    """The same database, with writes that give up on a held lock after 100 ms."""
    if url.startswith("sqlite:///"):
        return f"{url}?busy_timeout_ms=100"
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-c%20lock_timeout%3D100ms"


@contextmanager
def lock_held(url: str) -> Iterator[None]:
    """Another connection holding the write lock on the runs table (all of SQLite)."""
    if url.startswith("sqlite:///"):
        holder: Any = sqlite3.connect(sqlite_path(url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        holder = psycopg.connect(url)
        holder.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def test_a_write_that_meets_a_held_lock_is_a_transient_conflict(
        store_url: str, open_another: Callable[[], Store]) -> None:
    open_another()  # migrated
    store = open_store(impatient(store_url))
    try:
        with lock_held(store_url):
            with pytest.raises(StoreConflict) as caught, store.transaction() as tx:
                tx.runs.insert(make_run("r1"))
            assert classify(caught.value) == "transient"
        with store.transaction() as tx:  # the lock let go: the same write goes through
            tx.runs.insert(make_run("r1"))
    finally:
        store.close()
