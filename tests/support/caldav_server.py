"""A real CalDAV server (``radicale``) on ``127.0.0.1``, for testing the calendar connector.

The demo's :class:`~soloist.demo.calendars.CalDAVServer` with a test user and its data in
a temporary folder: htpasswd authentication (one user, plain password), ``owner_only``
rights, filesystem storage in the folder (gone when it stops). At start it creates one
calendar collection, :attr:`CalDAVTestServer.calendar_url` (``/<user>/calendar/``), with
the ``caldav`` client.

::

    with CalDAVTestServer() as dav:
        client = DAVClient(dav.url, username=dav.user, password=dav.password)
        calendar = client.calendar(url=dav.calendar_url)
"""

from __future__ import annotations

from soloist.demo.calendars import CalDAVServer

__all__ = ["CalDAVTestServer"]


class CalDAVTestServer(CalDAVServer):
    """``radicale`` as a subprocess on ``127.0.0.1`` and a free port, with one calendar."""

    def __init__(
        self, *, user: str = "planner", password: str = "s3cret", calendar: str = "calendar"
    ) -> None:
        super().__init__(user=user, password=password, calendar=calendar)
