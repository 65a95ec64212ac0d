"""The calendar connector (``kind = "calendar"``): a CalDAV calendar as tools and a trigger.

For a connector named ``cal``:

- ``cal.events(start, end)`` and ``cal.free_busy(start, end)`` read (recurring events
  expanded; busy periods merged, in UTC);
- ``cal.create(...)`` writes once per idempotency key: the key names the resource and the
  UID, and the ``PUT`` carries ``If-None-Match: *``, so a replay (a crash after the server
  answered) meets a ``412`` and returns the event already there. Its compensation is
  ``cal.delete`` of what it made;
- ``cal.update(uid or href, ...)`` reads the event first and writes with ``If-Match`` its
  ETag, so a change made meanwhile is refused rather than overwritten;
- ``cal.delete(href or uid)``: an event already gone counts as deleted.

Every time is time-zone aware: a naive ``start`` or ``end`` is refused with one sentence
(guessing a zone would move a meeting by hours). Floating times and all-day dates read
from the server are placed in the ``timezone`` setting.

The source ``events`` raises ``calendar.changed`` once per changed or deleted resource, by
the calendar's sync token (or its ctag and the resources' ETags, with
``sync_tokens = false``, for servers whose sync REPORT is missing or broken). The cursor
holds the new token and the changes not handed out yet, so a poll limited by the backlog
continues where it stopped; a token the server forgot restarts from scratch, and the
delivery ids (href and ETag) keep what was already received from coming in twice.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime

from soloist.config.connectors import CalendarConnector as CalendarSettings
from soloist.errors import DeterministicError, InvalidPayload
from soloist.execution.context import ToolCall
from soloist.integrations.calendar.client import DAV, CalendarClient, Saved
from soloist.integrations.calendar.ical import EventDraft
from soloist.integrations.calendar.sync import changes
from soloist.integrations.connector import Action, Connector, Polled, Received
from soloist.integrations.entities import load

CALDAV = "{urn:ietf:params:xml:ns:caldav}"
TOPIC = "calendar.changed"
_XML = "application/xml; charset=utf-8"
_PRINCIPAL = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
    "<D:current-user-principal/><C:calendar-home-set/><D:resourcetype/>"
    "</D:prop></D:propfind>"
)
_CHILDREN = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
    "<D:prop><D:resourcetype/><D:displayname/></D:prop></D:propfind>"
)
Attendees = list[str | dict[str, str]]


class CalendarConnector(Connector):
    kind = "calendar"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = cast(CalendarSettings, self.section)
        self.zone = ZoneInfo(self.settings.timezone)
        self._calendar_url: str | None = None
        self._lock = threading.Lock()

    # -- the client ----------------------------------------------------------------------

    def client(self, url: str | None = None) -> CalendarClient:
        """A client of the configured calendar (or of ``url``); close it after use."""
        return CalendarClient(url or self.calendar_url(), username=self.settings.username,
                              password=(self.secret(self.settings.password) or ""),
                              timeout=self.settings.timeout, zone=self.zone,
                              use_sync_tokens=self.settings.sync_tokens)

    def calendar_url(self) -> str:
        """The configured calendar's URL, found on the server once (``calendar`` is a
        path, a URL, a display name, or unset for the account's first calendar)."""
        with self._lock:
            if self._calendar_url is None:
                self._calendar_url = self._find_calendar()
            return self._calendar_url

    def _find_calendar(self) -> str:
        base = self.settings.url if self.settings.url.endswith("/") else self.settings.url + "/"
        wanted = self.settings.calendar
        if wanted is not None and "/" in wanted:
            return urljoin(base, wanted)
        with self.client(base) as dav:
            props = _props(dav, base, "0")
            here: Any = props[base] if base in props else next(iter(props.values()), None)
            if wanted is None and _is_calendar(here):
                return base
            principal = urljoin(base, _href(here, f"{DAV}current-user-principal") or base)
            home_props = _props(dav, principal, "0")
            home_of: Any = next(iter(home_props.values()), None)
            home = urljoin(principal, _href(home_of, f"{CALDAV}calendar-home-set") or principal)
            found = _calendars(dav, home)
        for url, name in found:
            if wanted is None or wanted in (name, urlsplit(url).path.rstrip("/").split("/")[-1]):
                return url
        names = ", ".join(name or urlsplit(url).path for url, name in found) or "none"
        what = f"no calendar named {wanted!r}" if wanted else "no calendar"
        raise DeterministicError(f"connector {self.name}: {dav.where} has {what} for "
                                 f"{self.settings.username} (found: {names})")

    # -- actions -------------------------------------------------------------------------

    def actions(self) -> Sequence[Action]:
        return (
            Action("events", self.events),
            Action("free_busy", self.free_busy),
            Action("create", self.create, "write", idempotent=True,
                   compensate=("delete", {"href": "{{ result.href }}"})),
            Action("update", self.update, "write", idempotent=True),
            Action("delete", self.delete, "write", idempotent=True),
        )

    def events(self, start: AwareDatetime, end: AwareDatetime) -> list[dict[str, Any]]:
        """Every event (each occurrence of a recurring one) overlapping [start, end)."""
        _ordered(start, end)
        with self.client() as dav:
            return [event.model_dump(mode="json") for event in dav.events(start, end)]

    def free_busy(self, start: AwareDatetime, end: AwareDatetime) -> list[dict[str, str]]:
        """The busy periods in [start, end), merged, in UTC."""
        _ordered(start, end)
        with self.client() as dav:
            return [{"start": s.isoformat(), "end": e.isoformat()}
                    for s, e in dav.free_busy(start, end)]

    def create(self, summary: str, start: AwareDatetime, end: AwareDatetime, *,
               call: ToolCall, all_day: bool = False, location: str = "",
               description: str = "", attendees: Attendees | None = None,
               rrule: str | None = None, transparent: bool = False) -> dict[str, Any]:
        """Create an event, once per idempotency key (a replay returns the first)."""
        draft = _draft({"summary": summary, "start": start, "end": end, "all_day": all_day,
                        "location": location, "description": description,
                        "attendees": _contacts(attendees or []), "rrule": rrule,
                        "transparent": transparent})
        with self.client() as dav:
            return _result(dav.create(call.idempotency_key, draft))

    def update(self, *, call: ToolCall, uid: str | None = None, href: str | None = None,
               summary: str | None = None, start: AwareDatetime | None = None,
               end: AwareDatetime | None = None, all_day: bool | None = None,
               location: str | None = None, description: str | None = None,
               attendees: Attendees | None = None, rrule: str | None = None,
               transparent: bool | None = None) -> dict[str, Any]:
        """Change the given fields of an event (named by uid or href), if nobody changed
        it since it was read."""
        with self.client() as dav:
            where = self._locate(dav, uid, href)
            current = dav.get_href(where) if where else None
            if current is None:
                raise DeterministicError(f"calendar {self.name} has no event "
                                         f"{_named(uid, href)} to update")
            fields = current.event.model_dump(
                include={"summary", "start", "end", "all_day", "location", "description",
                         "attendees", "rrule"})
            given = {"summary": summary, "start": start, "end": end, "all_day": all_day,
                     "location": location, "description": description, "rrule": rrule,
                     "transparent": transparent,
                     "attendees": None if attendees is None else _contacts(attendees)}
            fields.update({k: v for k, v in given.items() if v is not None})
            return _result(dav.update_href(current.href, _draft(fields),
                                           uid=current.event.uid, etag=current.etag or "*"))

    def delete(self, *, call: ToolCall, href: str | None = None,
               uid: str | None = None) -> dict[str, Any]:
        """Delete an event (named by href or uid); one already gone counts as deleted."""
        with self.client() as dav:
            where = self._locate(dav, uid, href)
            deleted = dav.delete_href(where) if where else False
            return {"href": where and urlsplit(dav.url(where)).path, "deleted": deleted}

    def _locate(self, dav: CalendarClient, uid: str | None, href: str | None) -> str | None:
        if bool(uid) == bool(href):
            raise DeterministicError(f"calendar {self.name} needs either uid or href to "
                                     "name the event, not both or neither")
        return href if href else dav.find_uid(str(uid))

    # -- trigger and test ----------------------------------------------------------------

    def sources(self) -> Sequence[EventsSource]:
        return (EventsSource(self),)

    def test(self) -> str:
        with self.client() as dav:
            name = dav.describe()
            return (f"logged in to {dav.where} as {self.settings.username} and found the "
                    f"calendar {name} at {dav.path}")


class EventsSource:
    """``calendar.changed`` for each resource of the calendar that changed or went away."""

    id = "events"

    def __init__(self, connector: CalendarConnector) -> None:
        self.connector = connector

    @property
    def interval(self) -> float:
        return self.connector.settings.poll_interval

    def poll(self, cursor: Any, limit: int) -> Polled:
        state = dict(cursor) if isinstance(cursor, Mapping) else {}
        pending = [tuple(item) for item in state.get("pending", [])]
        with self.connector.client() as dav:
            if not pending:
                delta = changes(dav, state.get("token"), etags=state.get("etags") or {})
                # In href order, so a poll cut short by the backlog resumes predictably.
                # From scratch, what a server lists as deleted is its history (Radicale
                # keeps it): under a new token it would be a second copy of a deletion.
                gone = () if delta.reset else delta.deleted
                pending = ([(href, "changed") for href in sorted(delta.changed)]
                           + [(href, "deleted") for href in sorted(gone)])
                state = {"token": delta.token, "pending": []}
                if delta.etags:
                    state["etags"] = dict(delta.etags)
            events = []
            for index, (href, what) in enumerate(pending[:limit]):
                rest = [list(item) for item in pending[index + 1:]]
                events.append(self._received(dav, str(href), what == "deleted",
                                             {**state, "pending": rest}))
        left = [list(item) for item in pending[limit:]]
        return Polled(events, {**state, "pending": left}, more=bool(left))

    def _received(self, dav: CalendarClient, href: str, deleted: bool,
                  cursor: dict[str, Any]) -> Received:
        payload: dict[str, Any] = {"connector": self.connector.name, "href": href,
                                   "event": None, "deleted": True}
        token = cursor.get("token", "")
        if deleted:
            return Received(f"{href}#deleted#{token}", TOPIC, payload, cursor)
        try:
            saved = dav.get_href(href)
        except InvalidPayload as error:  # kept, with what is wrong, rather than skipped
            payload.update(deleted=False, problem=str(error))
            return Received(f"{href}#invalid#{token}", TOPIC, payload, cursor)
        if saved is None:  # gone again since the delta was read
            return Received(f"{href}#deleted#{token}", TOPIC, payload, cursor)
        payload.update(deleted=False, event=saved.event.model_dump(mode="json"))
        return Received(f"{href}#{saved.etag or token}", TOPIC, payload, cursor)


def _draft(fields: Mapping[str, Any]) -> EventDraft:
    return load(EventDraft, fields)


def _ordered(start: datetime, end: datetime) -> None:
    if end < start:
        raise DeterministicError("the calendar range ends before it starts (end < start)")


def _contacts(attendees: Attendees) -> list[dict[str, str]]:
    return [{"email": a} if isinstance(a, str) else dict(a) for a in attendees]


def _result(saved: Saved) -> dict[str, Any]:
    return {"uid": saved.event.uid, "href": saved.href, "etag": saved.etag,
            "created": saved.created, "event": saved.event.model_dump(mode="json")}


def _named(uid: str | None, href: str | None) -> str:
    return f"with UID {uid}" if uid else f"at {href}"


def _props(dav: CalendarClient, url: str, depth: str) -> dict[str, Any]:
    """``{full URL: <D:prop> element}`` of a PROPFIND's 200 answers."""
    body = _PRINCIPAL if depth == "0" else _CHILDREN
    reply = dav.send("PROPFIND", url, body, {"Content-Type": _XML, "Depth": depth})
    dav.expect(reply, "PROPFIND", url, 207)
    found: dict[str, Any] = {}
    for response in reply.tree.iter(f"{DAV}response") if reply.tree is not None else ():
        href = urljoin(url, (response.findtext(f"{DAV}href") or "").strip())
        for propstat in response.iter(f"{DAV}propstat"):
            if " 200 " in (propstat.findtext(f"{DAV}status") or " 200 "):
                prop = propstat.find(f"{DAV}prop")
                if prop is not None:
                    found[href] = prop
    return found


def _href(prop: Any, name: str) -> str | None:
    element = prop.find(name) if prop is not None and len(prop) else None
    text = element.findtext(f"{DAV}href") if element is not None else None
    return text.strip() if text else None


def _is_calendar(prop: Any) -> bool:
    kinds = prop.find(f"{DAV}resourcetype") if prop is not None and len(prop) else None
    return kinds is not None and kinds.find(f"{CALDAV}calendar") is not None


def _calendars(dav: CalendarClient, home: str) -> list[tuple[str, str]]:
    found = _props(dav, home, "1")
    return sorted((url, (prop.findtext(f"{DAV}displayname") or "").strip())
                  for url, prop in found.items() if _is_calendar(prop))
