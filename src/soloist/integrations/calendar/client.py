"""A CalDAV client for one calendar collection, over the ``caldav`` library's HTTP client.

Plain parameters in (the collection's URL, a user name, a password already resolved, a
timeout), canonical entities out, and every failure one of Soloist's errors:

- a server that cannot be reached, a timeout, a ``5xx`` (with its ``Retry-After``) are
  :class:`~soloist.errors.TransientError`; a ``429`` is :class:`~soloist.errors.Throttled`
  (with its ``Retry-After``): the step waits without spending an attempt;
- bad credentials (``cannot log in to host:port as ada: authentication failed``), a
  refused request, a duplicate UID (``409``), a stale ETag (``412`` on an update) are
  :class:`~soloist.errors.DeterministicError`;
- a body that is not iCalendar is :class:`~soloist.errors.InvalidPayload`.

No message holds the password. Requests are sent with the library's ``request`` (its
session and authentication) rather than its object model, because creating once needs
``If-None-Match: *`` and its status codes, which ``save()`` does not expose, and its
429 handling would sleep inside the call (disabled here: Soloist's retries decide).

Creating is idempotent: an idempotency key names both the resource
(``soloist-<hash>.ics``, :func:`href_for`) and the UID (:func:`uid_for`), and the ``PUT``
carries ``If-None-Match: *``: ``201`` is created, ``412`` means an earlier attempt already
made it, so the stored event is returned instead. Deleting is the compensation, and
deleting what is already gone is not an error. Changes are read with an RFC 6578 sync
token (:mod:`.sync`), with a ctag/ETag comparison for servers without one.

The next layer (the connector) turns these calls into actions and a trigger; this module
knows nothing of the store or of runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from caldav.davclient import DAVClient
from caldav.lib import error as dav_error

# the HTTP library caldav chose (niquests, or requests without it): its errors are ours
from caldav.lib.http_sync import requests as http
from lxml import etree

from soloist.control.providers import parse_retry_after
from soloist.errors import (
    DeterministicError,
    Forbidden,
    InvalidSyncToken,
    Throttled,
    TransientError,
)
from soloist.integrations.calendar import ical
from soloist.integrations.calendar.ical import EventDraft
from soloist.integrations.entities import CalendarEvent

_HASH_DIGITS = 32  # 128 bits of the key's SHA-256: no two keys meet
_ICS = "text/calendar; charset=utf-8"
_XML = "application/xml; charset=utf-8"
DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"

_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="{start}" end="{end}"/>'
    "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
)
_BY_UID = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:prop-filter name="UID"><C:text-match collation="i;octet">{uid}</C:text-match>'
    "</C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
)
_DISPLAY_NAME = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
    "<D:prop><D:displayname/><D:resourcetype/></D:prop></D:propfind>"
)
_FREE_BUSY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:_HASH_DIGITS]


def uid_for(key: str) -> str:
    """The UID of the event an idempotency key creates."""
    return f"soloist-{_digest(key)}@soloist"


def href_for(key: str) -> str:
    """The resource name (relative to the calendar) of the event a key creates."""
    return f"soloist-{_digest(key)}.ics"


@dataclass(frozen=True)
class Saved:
    """An event as the server holds it: where, its ETag, and whether this call made it."""

    href: str
    etag: str | None
    event: CalendarEvent
    created: bool = False


@dataclass(frozen=True)
class Reply:
    """What the server answered (status, headers, body), once errors are translated."""

    status: int
    headers: dict[str, str]
    body: str
    tree: Any  # the parsed XML of a multistatus (lxml), or None




class CalendarClient:
    """One calendar collection on a CalDAV server.

    ``zone`` is where floating times and all-day dates are placed (the data names none).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, calendar_url: str, *, username: str, password: str,
                 timeout: float = 30.0, zone: tzinfo = UTC,
                 use_sync_tokens: bool = True) -> None:
        self.calendar_url = calendar_url if calendar_url.endswith("/") else calendar_url + "/"
        self.username = username
        self.timeout = timeout
        self.zone = zone
        #: off for a server whose sync-collection REPORT is missing or broken
        self.use_sync_tokens = use_sync_tokens
        parts = urlsplit(self.calendar_url)
        self.where = parts.netloc.rpartition("@")[2]
        self.path = parts.path
        # caldav types the timeout as int but hands it to requests, which takes a float
        self._dav = DAVClient(self.calendar_url, username=username, password=password,
                              timeout=timeout,  # type: ignore[arg-type]
                              rate_limit_handle=False)

    def close(self) -> None:
        self._dav.close()

    def __enter__(self) -> CalendarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ------------------------------------------------------------------------

    def create(self, key: str, draft: EventDraft) -> Saved:
        """Create the event of ``key`` once; a repeat returns the event already there."""
        href = self.url(href_for(key))
        body = ical.to_ical(draft, uid_for(key))
        reply = self.send("PUT", href, body, {"Content-Type": _ICS, "If-None-Match": "*"})
        if reply.status == 412:
            existing = self.get(key)
            if existing is None:  # deleted in between: the next attempt creates it
                raise TransientError(f"the event {self.name(href)} on {self.where} "
                                     "changed while it was being created")
            return existing
        if reply.status == 409:
            raise DeterministicError(f"{self.where} refused the event {self.name(href)}: "
                                     f"another resource already holds UID {uid_for(key)}")
        self.expect(reply, "PUT", href, 201, 204)
        return self._written(href, body, reply, created=True)

    def get(self, key: str) -> Saved | None:
        """The event of ``key`` as stored, or ``None`` when there is none."""
        return self.get_href(href_for(key))

    def get_href(self, href: str) -> Saved | None:
        url = self.url(href)
        reply = self.send("GET", url)
        if reply.status == 404:
            return None
        self.expect(reply, "GET", url, 200)
        return self._saved(url, reply.body, reply.headers.get("etag"))

    def update(self, key: str, draft: EventDraft, *, etag: str) -> Saved:
        """Write ``draft`` over the event of ``key`` if it still has ``etag``."""
        return self.update_href(href_for(key), draft, uid=uid_for(key), etag=etag)

    def update_href(self, href: str, draft: EventDraft, *, uid: str, etag: str) -> Saved:
        """Write ``draft`` (under ``uid``) over the event at ``href`` if it still has
        ``etag``: a change made meanwhile by someone else is refused, never overwritten."""
        url = self.url(href)
        body = ical.to_ical(draft, uid)
        reply = self.send("PUT", url, body, {"Content-Type": _ICS, "If-Match": etag})
        if reply.status == 412:
            raise DeterministicError(f"the event {self.name(url)} on {self.where} changed "
                                     "or went away since it was read (its ETag is stale)")
        self.expect(reply, "PUT", url, 200, 201, 204)
        return self._written(url, body, reply)

    def delete(self, key: str, *, etag: str | None = None) -> bool:
        """Delete the event of ``key``; ``False`` when it was already gone."""
        return self.delete_href(href_for(key), etag=etag)

    def delete_href(self, href: str, *, etag: str | None = None) -> bool:
        """Delete the event at ``href``; ``False`` when it was already gone."""
        url = self.url(href)
        reply = self.send("DELETE", url, "", {"If-Match": etag} if etag else {})
        if reply.status == 404:
            return False
        if reply.status == 412:
            raise DeterministicError(f"the event {self.name(url)} on {self.where} changed "
                                     "since it was read (its ETag is stale)")
        self.expect(reply, "DELETE", url, 200, 204)
        return True

    def find_uid(self, uid: str) -> str | None:
        """The href of the resource that holds the event ``uid``, or ``None``."""
        if uid.startswith("soloist-") and uid.endswith("@soloist"):
            href = uid.removesuffix("@soloist") + ".ics"  # the name href_for gave it
            if self.get_href(href) is not None:
                return urlsplit(self.url(href)).path
        body = _BY_UID.format(uid=escape(uid))
        reply = self.send("REPORT", self.calendar_url, body,
                          {"Content-Type": _XML, "Depth": "1"})
        self.expect(reply, "REPORT", self.calendar_url, 207)
        return next((href for href, _ in multistatus(reply, self.where)
                     if href.rstrip("/") != self.path.rstrip("/")), None)

    def describe(self) -> str:
        """The calendar's display name (or its path): one PROPFIND, which also proves the
        credentials and that the collection exists."""
        reply = self.send("PROPFIND", self.calendar_url, _DISPLAY_NAME,
                          {"Content-Type": _XML, "Depth": "0"})
        if reply.status == 404:
            raise DeterministicError(f"{self.where} has no calendar at {self.path}")
        self.expect(reply, "PROPFIND", self.calendar_url, 207)
        found = multistatus(reply, self.where)
        name = found[0][1].get(f"{DAV}displayname") if found else None
        return name or self.path

    def events(self, start: datetime, end: datetime) -> list[CalendarEvent]:
        """Every occurrence overlapping ``[start, end)``, recurring events expanded."""
        found: list[CalendarEvent] = []
        for href, etag, calendar in self._query(start, end):
            found.extend(ical.occurrences(calendar, start, end, where=self.name(href),
                                          zone=self.zone, etag=etag))
        return sorted(found, key=lambda event: (event.start, event.uid))

    def free_busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The busy periods in ``[start, end)``, merged, in UTC.

        Asked with a ``free-busy-query`` REPORT; a server without one (it is optional in
        CalDAV) gets them computed from the events (:meth:`busy_from_events`).
        """
        body = _FREE_BUSY.format(start=_utc(start), end=_utc(end))
        try:
            reply = self.send("REPORT", self.calendar_url, body,
                              {"Content-Type": _XML, "Depth": "1"})
        except Forbidden:  # how RFC 4791 servers say a REPORT is not supported
            return self.busy_from_events(start, end)
        if reply.status != 200 or "VFREEBUSY" not in reply.body:
            return self.busy_from_events(start, end)
        where = f"the free/busy reply of {self.where}"
        calendar = ical.parse_calendar(reply.body, where=where)
        return _merged((max(s, start), min(e, end))
                       for s, e in ical.free_busy_of(calendar, where=where))

    def busy_from_events(self, start: datetime,
                         end: datetime) -> list[tuple[datetime, datetime]]:
        """The busy periods in ``[start, end)`` from the opaque, not cancelled events."""
        periods: list[tuple[datetime, datetime]] = []
        for href, _etag, calendar in self._query(start, end):
            periods.extend(ical.busy_periods(calendar, start, end, where=self.name(href),
                                             zone=self.zone))
        return _merged(periods)

    # -- the wire ----------------------------------------------------------------------

    def url(self, href: str) -> str:
        """``href`` (a name in the calendar, a path or a URL) as a full URL."""
        return urljoin(self.calendar_url, href)

    def send(self, method: str, url: str, body: str = "",
             headers: dict[str, str] | None = None) -> Reply:
        """One request; what cannot be an answer to handle becomes a Soloist error."""
        try:
            response = self._dav.request(url, method, body, headers or {})
        except dav_error.RateLimitError as error:
            # a 429 is a limit (a wait); a 503 with Retry-After is a server that is down
            # for now, which is a failure its breaker should count
            busy = Throttled if error.status == 429 else TransientError
            raise busy(f"{self.where} is busy (rate limited); try again later",
                       retry_after=error.retry_after_seconds) from None
        except dav_error.AuthorizationError as error:
            if error.status == 403 and f"{DAV}valid-sync-token" in error.preconditions:
                raise InvalidSyncToken(f"{self.where} no longer knows the sync token") from None
            if error.status == 403:
                raise Forbidden(f"{self.where} refused {method} {self.name(url)} "
                              f"for {self.username}: permission denied") from None
            raise DeterministicError(f"cannot log in to {self.where} as {self.username}: "
                                     "authentication failed") from None
        except dav_error.DAVError as error:
            raise DeterministicError(f"{self.where} refused {method} {self.name(url)}: "
                                     f"{type(error).__name__}") from None
        except etree.XMLSyntaxError:
            raise DeterministicError(f"{self.where} answered {method} {self.name(url)} "
                                     "with malformed XML") from None
        except http.exceptions.Timeout:
            raise TransientError(f"{self.where} did not answer {method} {self.name(url)} "
                                 f"within {self.timeout:g}s") from None
        except http.exceptions.ConnectionError:
            raise TransientError(f"cannot reach {self.where}: the connection failed "
                                 "(is the server running?)") from None
        except http.exceptions.RequestException as error:
            raise TransientError(f"the request {method} {self.name(url)} to {self.where} "
                                 f"failed: {type(error).__name__}") from None
        status = int(response.status)
        if status >= 500 or status == 429:
            error_class = Throttled if status == 429 else TransientError
            raise error_class(
                f"{self.where} is busy (rate limited); try again later" if status == 429
                else f"{self.where} failed {method} {self.name(url)} with status {status}",
                retry_after=parse_retry_after(dict(response.headers.items())))
        raw = response._raw  # the body, CRLF made LF by caldav (``raw`` re-serialises XML)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        return Reply(status, {k.lower(): v for k, v in response.headers.items()}, text,
                     getattr(response, "tree", None))

    def expect(self, reply: Reply, method: str, url: str, *ok: int) -> None:
        if reply.status not in ok:
            raise DeterministicError(f"{self.where} refused {method} {self.name(url)} "
                                     f"with status {reply.status}")

    def name(self, url: str) -> str:
        """``url`` as messages name it: relative to the calendar, or the calendar's path."""
        path = urlsplit(url).path
        inside = path[len(self.path):] if path.startswith(self.path) else ""
        return inside or path

    def _written(self, url: str, body: str, reply: Reply, *, created: bool = False) -> Saved:
        etag = reply.headers.get("etag")
        if etag is None:  # the server changed what it stored (RFC 4791 5.3.4): read it back
            stored = self.get_href(url)
            if stored is not None:
                return Saved(stored.href, stored.etag, stored.event, created)
        return self._saved(url, body, etag, created=created)

    def _saved(self, url: str, body: str, etag: str | None, *, created: bool = False) -> Saved:
        where = self.name(url)
        calendar = ical.parse_calendar(body, where=where)
        events = ical.events_of(calendar, where=where, zone=self.zone, etag=etag)
        if not events:
            raise ical.no_event(where)
        master = next((e for e in events if e.recurrence_id is None), events[0])
        return Saved(urlsplit(url).path, etag, master, created)

    def _query(self, start: datetime, end: datetime) -> list[tuple[str, str | None, Any]]:
        body = _QUERY.format(start=_utc(start), end=_utc(end))
        reply = self.send("REPORT", self.calendar_url, body,
                          {"Content-Type": _XML, "Depth": "1"})
        self.expect(reply, "REPORT", self.calendar_url, 207)
        found = []
        for href, props in multistatus(reply, self.where):
            data = props.get(f"{CALDAV}calendar-data")
            if data is None:
                continue
            found.append((href, props.get(f"{DAV}getetag"),
                          ical.parse_calendar(data, where=self.name(href))))
        return found


def multistatus(reply: Reply, where: str) -> list[tuple[str, dict[str, str | None]]]:
    """``(href, {property: text})`` per response of a 207 (a 404 one has ``status``)."""
    if reply.tree is None:
        raise DeterministicError(f"the multistatus reply of {where} is not XML")
    found = []
    for response in reply.tree.iter(f"{DAV}response"):
        href = (response.findtext(f"{DAV}href") or "").strip()
        props: dict[str, str | None] = {}
        status = response.findtext(f"{DAV}status")
        if status:
            props["status"] = status
        for propstat in response.iter(f"{DAV}propstat"):
            if " 200 " not in (propstat.findtext(f"{DAV}status") or " 200 "):
                continue
            for prop in propstat.iter(f"{DAV}prop"):
                for child in prop:
                    props[child.tag] = child.text
        found.append((href, props))
    return found


def _merged(periods: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in periods):
        if finish <= begin:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise DeterministicError("a calendar range needs time-zone aware datetimes")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
