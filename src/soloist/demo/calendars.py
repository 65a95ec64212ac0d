"""The demo's CalDAV server: ``radicale`` as a subprocess, with one calendar.

Radicale runs with its own config in its folder: htpasswd authentication (one user,
plain password), ``owner_only`` rights, its collections on disk in the same folder (kept
across restarts), no web interface. At start the calendar ``/<user>/<calendar>/`` is
made when it does not exist yet.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from soloist.demo.processes import ProcessServer

if TYPE_CHECKING:
    from caldav.davclient import DAVClient

__all__ = ["CalDAVServer", "CalendarEntry", "radicale_config"]


class CalendarEntry(NamedTuple):
    """One event as the CalDAV server holds it."""

    uid: str
    summary: str
    start: datetime.date | datetime.datetime | None
    end: datetime.date | datetime.datetime | None


def radicale_config(host: str, port: int, folder: Path) -> str:
    """Radicale's config for one server on ``host:port`` with its data in ``folder``."""
    return f"""\
[server]
hosts = {host}:{port}

[auth]
type = htpasswd
htpasswd_filename = {folder}/users
htpasswd_encryption = plain
# Radicale sleeps about this long after a failed login; nobody should wait for a typo.
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


class CalDAVServer(ProcessServer):
    """``radicale`` as a subprocess on ``127.0.0.1``, with one calendar."""

    name = "CalDAV (radicale)"
    prefix = "soloist-caldav-"
    log_name = "radicale.log"
    modules = ("radicale", "caldav", "icalendar")

    def __init__(self, folder: Path | None = None, *, user: str, password: str,
                 calendar: str = "calendar", port: int = 0) -> None:
        super().__init__(folder, port=port)
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
        config.write_text(radicale_config(self.host, self.port, self.folder))
        return [sys.executable, "-m", "radicale", "--config", str(config)]

    def ready(self) -> None:
        if (self.folder / "collections" / "collection-root" / self.user
                / self.calendar_name).is_dir():
            return  # made by an earlier start on this folder
        with self.client() as client:
            principal = client.principal()  # type: ignore[no-untyped-call]  # caldav: untyped
            principal.make_calendar(name=self.calendar_name, cal_id=self.calendar_name)

    def client(self) -> DAVClient:
        """A ``caldav`` client logged in as the user (use it as a context manager)."""
        from caldav.davclient import DAVClient

        return DAVClient(self.url, username=self.user, password=self.password, timeout=10)

    def events(self) -> list[CalendarEntry]:
        """Every event of the calendar, read over CalDAV, by UID."""
        import icalendar

        entries = []
        with self.client() as client:
            calendar = client.calendar(url=self.calendar_url)  # type: ignore[no-untyped-call]
            for resource in calendar.events():
                parsed = icalendar.Calendar.from_ical(resource.data)
                for event in parsed.walk("VEVENT"):
                    start, end = event.get("DTSTART"), event.get("DTEND")
                    entries.append(CalendarEntry(
                        uid=str(event.get("UID", "")), summary=str(event.get("SUMMARY", "")),
                        start=None if start is None else start.dt,
                        end=None if end is None else end.dt))
        return sorted(entries, key=lambda entry: entry.uid)
