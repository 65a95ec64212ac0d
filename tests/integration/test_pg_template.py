"""The suite's PostgreSQL template is migrated once: a store opened on a clone applies none.

Every per-test database is cloned from it (``pg_url`` in ``tests/conftest.py``), so a test
pays for a clone, not for the migrations.
"""

from __future__ import annotations

from typing import Any

import psycopg

from soloist.store import migrations, open_store

SHIPPED = migrations.load("soloist.store.postgres.migrations")


def _recorded(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        return [tuple(row) for row in rows.fetchall()]


def test_a_clone_comes_migrated_and_opening_it_applies_nothing(pg_url: str) -> None:
    before = _recorded(pg_url)  # read before any store opens the clone
    assert [(v, n) for v, n, _ in before] == [(m.version, m.name) for m in SHIPPED]
    open_store(pg_url).close()
    assert _recorded(pg_url) == before  # the same rows, recorded when the template was made
