"""The contract suite's fixtures: every test here runs once per backend.

``store`` is an open store on a fresh database: SQLite on a file in ``tmp_path``, or
PostgreSQL on a database cloned for the test on the embedded server (``pg_url`` in
``tests/conftest.py``). ``open_another`` opens a second store on the same database, as
another process would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from soloist.store import open_store
from soloist.store.base import Store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database of the backend under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def open_another(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens more stores on the test's database; closes them after the test."""
    opened: list[Store] = []

    def opener() -> Store:
        store = open_store(store_url)
        opened.append(store)
        return store

    try:
        yield opener
    finally:
        for store in reversed(opened):
            store.close()


@pytest.fixture
def store(open_another: Callable[[], Store]) -> Store:
    """An open store, migrated, on the test's fresh database."""
    return open_another()
