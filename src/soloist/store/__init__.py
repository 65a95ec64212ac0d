"""Storage: one contract (``base``), a SQLite and a PostgreSQL backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from soloist.errors import ConfigError
from soloist.store.base import Store
from soloist.store.permissions import PRIVATE_DIR


def open_store(url: str, *, direct_url: str | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``.

    ``direct_url`` (PostgreSQL only) is the server itself when ``url`` is a transaction
    pooler: the store's sessions (LISTEN, the scheduler's lock) connect there.
    """
    if direct_url is not None and not direct_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("database.direct_url must be a postgresql:// URL (the server "
                          "behind the pooler that database.url names)")
    if url.startswith("sqlite:///"):
        if direct_url is not None:
            raise ConfigError("database.direct_url applies to PostgreSQL only: a SQLite "
                              "store has no pooler in front of it")
        from soloist.store.sqlite.backend import SQLiteStore

        path, busy_timeout_ms = _sqlite_options(url)
        if path != ":memory:":
            # A folder made for the store is the owner's alone (the file is, see backend).
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if busy_timeout_ms is None:
            return SQLiteStore(path)
        return SQLiteStore(path, busy_timeout_ms=busy_timeout_ms)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from soloist.store.postgres.backend import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL needs the postgres extra: pip install 'soloist[postgres]'"
            ) from exc
        return PostgresStore(url, direct_url=direct_url)
    raise ConfigError(f"unknown database URL {url!r}; use sqlite:///PATH or postgresql://...")


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:///PATH[?options]`` URL names."""
    return url.removeprefix("sqlite:///").partition("?")[0]


def _sqlite_options(url: str) -> tuple[str, int | None]:
    """The path and the one option (``busy_timeout_ms``) of a SQLite URL."""
    path = sqlite_path(url)
    query = url.partition("?")[2]
    busy: int | None = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "busy_timeout_ms":
            raise ConfigError(f"unknown option {name!r} in the SQLite URL; the one option is "
                              "busy_timeout_ms")
        if not value.isdigit():
            raise ConfigError(f"busy_timeout_ms in the SQLite URL must be a whole number of "
                              f"milliseconds, not {value!r}")
        busy = int(value)
    return path, busy
