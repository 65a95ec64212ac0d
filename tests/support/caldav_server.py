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

import sys

from caldav.davclient import DAVClient

from support.netutil import ProcessServer

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


class CalDAVTestServer(ProcessServer):
    """``radicale`` as a subprocess on ``127.0.0.1`` and a free port, with one calendar."""

    prefix = "soloist-caldav-"
    log_name = "radicale.log"

    def __init__(
        self, *, user: str = "planner", password: str = "s3cret", calendar: str = "calendar"
    ) -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.calendar_name = calendar

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def calendar_url(self) -> str:
        return f"{self.url}{self.user}/{self.calendar_name}/"

    def command(self) -> list[str]:
        (self.folder / "users").write_text(f"{self.user}:{self.password}\n")
        config = self.folder / "config"
        config.write_text(_CONFIG.format(host=self.host, port=self.port, folder=self.folder))
        return [sys.executable, "-m", "radicale", "--config", str(config)]

    def ready(self) -> None:
        with self.client() as client:
            client.principal().make_calendar(name=self.calendar_name, cal_id=self.calendar_name)

    def client(self) -> DAVClient:
        """A ``caldav`` client logged in as the user (use it as a context manager)."""
        return DAVClient(self.url, username=self.user, password=self.password, timeout=10)
