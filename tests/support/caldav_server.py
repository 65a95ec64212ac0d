"""A real CalDAV server (``radicale``) on ``127.0.0.1``, for testing the calendar connector.

Radicale runs as a subprocess with its own config file in a temporary folder: htpasswd
authentication (one user, plain password), ``owner_only`` rights, filesystem storage in
the same folder (gone when it stops). At start the harness creates one calendar
collection, :attr:`CalDAVTestServer.calendar_url` (``/<user>/calendar/``), with the
``caldav`` client.

::

    with CalDAVTestServer() as dav:
        client = DAVClient(dav.url, username=dav.user, password=dav.password)
        calendar = client.calendar(url=dav.calendar_url)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from caldav.davclient import DAVClient

from support.netutil import HOST, free_port, stop_process, wait_for_port

__all__ = ["CalDAVTestServer"]

_CONFIG = """\
[server]
hosts = {host}:{port}

[auth]
type = htpasswd
htpasswd_filename = {folder}/users
htpasswd_encryption = plain
# Radicale sleeps about this long after a failed login; tests of bad credentials
# should not wait.
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {folder}/collections

[web]
type = none

[logging]
level = warning
"""


class CalDAVTestServer:
    """``radicale`` as a subprocess on ``127.0.0.1`` and a free port, with one calendar."""

    def __init__(
        self, *, user: str = "planner", password: str = "s3cret", calendar: str = "calendar"
    ) -> None:
        self.host = HOST
        self.port = 0
        self.user = user
        self.password = password
        self.calendar_name = calendar
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def calendar_url(self) -> str:
        return f"{self.url}{self.user}/{self.calendar_name}/"

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="soloist-caldav-")
        folder = Path(self._tmp.name)
        self.port = free_port()
        (folder / "users").write_text(f"{self.user}:{self.password}\n")
        config = folder / "config"
        config.write_text(_CONFIG.format(host=self.host, port=self.port, folder=folder))
        log = folder / "radicale.log"
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for_port(self.port, process=self._process, log=log)
            with self.client() as client:
                client.principal().make_calendar(name=self.calendar_name, cal_id=self.calendar_name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self) -> DAVClient:
        """A ``caldav`` client logged in as the user (use it as a context manager)."""
        return DAVClient(self.url, username=self.user, password=self.password, timeout=10)
