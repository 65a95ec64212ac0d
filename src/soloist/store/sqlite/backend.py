"""The embedded default store: one SQLite file in WAL mode.

Writes go through one connection per process, serialised by a lock and opened with
``BEGIN IMMEDIATE`` so that other processes queue on SQLite's own lock instead of failing
half-way. Reads use their own connections and see the last commit. Workers in this process
are woken by a condition variable when a commit makes steps ready; workers in other
processes poll, which ``polls = True`` tells them.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from soloist.errors import StoreConflict, StoreError, StoreUnavailable, UniqueViolation
from soloist.store import migrations
from soloist.store.base import Redaction
from soloist.store.permissions import private_file
from soloist.store.repositories import SqlTransaction
from soloist.store.sqlite import queries

BUSY_TIMEOUT_MS = 30_000
"""How long a write waits for another connection's lock before it is a
:class:`~soloist.errors.StoreConflict` (``?busy_timeout_ms=`` in the URL changes it)."""


_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_UNAVAILABLE = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR")
_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
#: Free bytes under which an I/O error on the store is taken for a full disk (a page or
#: two of the WAL; tmpfs and quotas report ENOSPC through SQLITE_IOERR_* as well).
_ROOM = 64 * 1024


def _family(name: str, families: tuple[str, ...]) -> bool:
    """Whether an error code name is one of the primary codes or an extended code of one
    (``SQLITE_IOERR_FSYNC`` is an ``SQLITE_IOERR``)."""
    return any(name == f or name.startswith(f + "_") for f in families)


def _unique_key(text: str) -> tuple[str, str, tuple[str, ...]]:
    """The constraint, table and columns of ``UNIQUE constraint failed: t.a, t.b``.

    SQLite names no constraint; its message lists the key's columns, so the constraint is
    ``t(a, b)``. A unique index on expressions is named instead (``index 'name'``).
    """
    listed = text.partition(":")[2].strip()
    if listed.startswith("index "):
        return listed.removeprefix("index ").strip("'\""), "", ()
    pairs = [item.strip().partition(".") for item in listed.split(",") if item.strip()]
    table = pairs[0][0] if pairs else ""
    columns = tuple(column for _, _, column in pairs)
    return f"{table}({', '.join(columns)})", table, columns


def _translate(exc: sqlite3.Error, path: str) -> StoreError:
    """The Soloist error for a driver error, by SQLite's error code name (the message text
    is for people and changes between versions)."""
    text = str(exc)
    name = getattr(exc, "sqlite_errorname", None) or ""
    if _family(name, _BUSY):
        # Another connection holds the lock past the busy timeout, or a read snapshot
        # went stale before it could write (SQLITE_BUSY_SNAPSHOT): run it again.
        return StoreConflict(f"the SQLite store at {path} stayed locked ({name}): {text}")
    if _is_full(exc, path):
        return _full(f"the SQLite store {path}", name)
    if _family(name, _UNAVAILABLE):
        return StoreUnavailable(f"cannot open the SQLite store at {path} ({name}): {text}")
    if name in _UNIQUE:
        constraint, table, columns = _unique_key(text)
        return UniqueViolation(f"a row with the same key already exists in the SQLite store "
                               f"at {path} (constraint {constraint}, {name})",
                               constraint=constraint, table=table, columns=columns)
    code = f" ({name})" if name else ""
    return StoreError(f"SQLite error on {path}{code}: {text}")


def _disk_full(path: str) -> bool:
    """Whether the file system that holds ``path`` has no room left for another page."""
    if path == ":memory:":
        return False
    try:
        return shutil.disk_usage(Path(path).parent).free < _ROOM
    except OSError:
        return False


def _is_full(exc: sqlite3.Error, path: str) -> bool:
    """Whether ``exc`` says the disk under ``path`` is full: SQLITE_FULL (SQLite's other
    cause, a ``max_page_count`` reached, is a setting no Soloist store makes), or an I/O
    error where no room is left."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    return _family(name, ("SQLITE_FULL",)) or (_family(name, ("SQLITE_IOERR",))
                                               and _disk_full(path))


def _full(what: str, name: str) -> StoreUnavailable:
    """A store that cannot grow is unavailable, not broken: SQLite rolled the transaction
    back whole, so a worker retries it and carries on once there is room."""
    return StoreUnavailable(f"the disk holding {what} is full ({name}): nothing more is "
                            "written until space is freed there, and nothing already "
                            "written is lost")


def _os_error(exc: OSError, path: str, what: str) -> StoreError:
    """The Soloist error for a file operation on the store's folder that failed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full(what, errno.errorcode[exc.errno])
    return StoreUnavailable(f"cannot open the SQLite store at {path}: {exc.strerror}")


def kept_path(path: str) -> str:
    """The file beside the store that a restore leaves alone: ``state.db`` keeps
    ``state-ledger.db``. The backup API copies and replaces the ``main`` database only."""
    if path == ":memory:":
        return path
    store = Path(path)
    return str(store.with_name(f"{store.stem}-ledger.db"))


def _execute(raw: sqlite3.Connection, sql: str, path: str) -> None:
    """One statement outside a :class:`_Conn`, its error translated."""
    try:
        raw.execute(sql)
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc


class _Conn:
    """The Connection seam over one sqlite3 connection."""

    def __init__(self, raw: sqlite3.Connection, path: str) -> None:
        self.raw = raw
        self.path = path
        # As on PostgreSQL, a failed statement dooms the transaction, even if the caller
        # swallowed the error: committing the rest would record half a decision.
        self.failed: StoreError | None = None

    def _fail(self, exc: sqlite3.Error) -> StoreError:
        error = _translate(exc, self.path)
        if self.failed is None:
            self.failed = error
        return error

    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            cursor = self.raw.execute(sql, params or {})
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        try:
            return self.raw.execute(sql, params or {}).rowcount
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def run_many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        if not params:
            return
        try:
            self.raw.executemany(sql, params)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc


class SQLiteStore:
    polls = True
    redaction: Redaction | None = None

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL",
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.url = f"sqlite:///{self.path}"
        #: What a restore never rewinds (``soloist.store.ledger``), in a file of its own.
        self.kept_path = kept_path(self.path)
        if self.kept_path != ":memory:" and Path(self.path).parent.is_dir():
            # Intents' results are no one else's business: private from its first byte
            # (SQLite gives its -wal and -shm files the same mode).
            try:
                os.close(os.open(self.kept_path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise _os_error(exc, self.path, f"the SQLite store {self.path}") from exc
        self.synchronous = synchronous
        self._write_lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._local = threading.local()
        # Every thread's reader, so that close() closes them all, not only its own: a
        # thread that read (a web request, a poller) may outlive nothing, yet its
        # connection would keep the file open until it is collected.
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise StoreUnavailable(
                    f"cannot open the SQLite store at {self.path}: folder {parent} does not exist"
                )
            self._make_private()
        try:
            raw = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                check_same_thread=False,
            )
            raw.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            raw.execute("PRAGMA journal_mode = WAL")
            raw.execute(f"PRAGMA synchronous = {self.synchronous}")
            raw.execute("PRAGMA foreign_keys = ON")
            raw.execute("ATTACH DATABASE ? AS kept", (self.kept_path,))
            raw.execute("PRAGMA kept.journal_mode = WAL")
            raw.execute(f"PRAGMA kept.synchronous = {self.synchronous}")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        return raw

    def _make_private(self) -> None:
        """The database and its -wal and -shm files are readable by their owner only.

        Created 0600 before SQLite opens it (SQLite gives the -wal and -shm files the mode
        of the database file); an existing one is tightened.
        """
        try:
            for path in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
                if path == self.path or Path(path).exists():
                    private_file(Path(path))
        except OSError as exc:
            raise _os_error(exc, self.path, f"the SQLite store {self.path}") from exc

    def _migrate(self) -> None:
        wanted = migrations.load("soloist.store.sqlite.migrations")
        with self._write_lock:
            raw = self._writer
            try:
                raw.execute("BEGIN IMMEDIATE")
                raw.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
                )
                done = {r[0] for r in raw.execute("SELECT version FROM schema_migrations")}
                for migration in wanted:
                    if migration.version in done:
                        continue
                    for statement in migrations.split_statements(migration.sql):
                        raw.execute(statement)
                    raw.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (migration.version, migration.name, time.time()),
                    )
                raw.execute("COMMIT")
            except sqlite3.Error as exc:
                raw.execute("ROLLBACK") if raw.in_transaction else None
                raise _translate(exc, self.path) from exc

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with self._write_lock:
            raw = self._writer
            conn = _Conn(raw, self.path)
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            try:
                tx = SqlTransaction(conn, queries, self.redaction)
                yield tx
                tx.events.flush()
                if conn.failed is not None:
                    aborted = StoreError(f"the transaction on {self.path} was aborted by an "
                                         f"earlier error: {conn.failed.message}")
                    aborted.kind = conn.failed.kind  # a busy store stays worth a retry
                    raise aborted from conn.failed
                # The WAL is written here: a full disk is mostly seen at COMMIT.
                _execute(raw, "COMMIT", self.path)
            except BaseException:
                # SQLite may have rolled back by itself after an I/O error or a full disk;
                # a failed ROLLBACK must not hide the error that led to it.
                if raw.in_transaction:
                    with suppress(sqlite3.Error):
                        raw.execute("ROLLBACK")
                raise
        if tx.wants_notify:
            self.wake()

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        raw: sqlite3.Connection | None = getattr(self._local, "reader", None)
        # A read within a read on this thread (a secret looked up while a search embeds its
        # query) gets a connection of its own, as each read does on PostgreSQL.
        nested = raw is not None and raw.in_transaction
        if raw is None or nested:
            raw = self._connect()
            if not nested:
                self._local.reader = raw
                with self._readers_lock:
                    self._readers.append(raw)
        try:
            try:
                raw.execute("BEGIN")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            try:
                yield SqlTransaction(_Conn(raw, self.path), queries, self.redaction,
                                     write=False)
            finally:
                raw.execute("ROLLBACK")
        finally:
            if nested:
                raw.close()

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def wake(self) -> None:
        for callback in list(self._listeners):
            callback()

    def now(self) -> float:
        return time.time()  # one host: its processes share its clock

    def try_scheduler_lock(self, owner: str) -> bool:
        with self.transaction() as tx:
            return tx.scheduler.try_lead("scheduler", owner, time.time(), ttl=15.0)

    def release_scheduler_lock(self, owner: str) -> None:
        with self.transaction() as tx:
            tx.scheduler.resign("scheduler", owner)

    def backup(self, path: Path) -> None:
        """SQLite's online backup API, under the writer lock: a consistent copy (of
        ``main``: the kept database is no part of a snapshot)."""
        copy = f"the snapshot being written to {path}"
        try:
            private_file(path)
        except OSError as exc:
            raise _os_error(exc, self.path, copy) from exc
        target = sqlite3.connect(str(path))
        try:
            with self._write_lock:
                self._writer.backup(target)
        except sqlite3.Error as exc:
            if _is_full(exc, str(path)):  # only the copy is written: its disk is full
                raise _full(copy, getattr(exc, "sqlite_errorname", "SQLITE_FULL")) from exc
            raise _translate(exc, self.path) from exc
        finally:
            target.close()

    def restore(self, path: Path) -> None:
        source = sqlite3.connect(str(path))
        try:
            with self._write_lock:
                source.backup(self._writer)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        finally:
            source.close()
        self._migrate()  # a copy made by an older version lacks the newer tables

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
