"""Storage: one contract (``base``), a SQLite and a PostgreSQL backend."""

from __future__ import annotations

from pathlib import Path

from soloist.errors import ConfigError
from soloist.store.base import Store
from soloist.store.permissions import PRIVATE_DIR


def open_store(url: str) -> Store:
    """Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        from soloist.store.sqlite.backend import SQLiteStore

        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            # A folder made for the store is the owner's alone (the file is, see backend).
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        return SQLiteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from soloist.store.postgres.backend import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL needs the postgres extra: pip install 'soloist[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise ConfigError(f"unknown database URL {url!r}; use sqlite:///PATH or postgresql://...")
