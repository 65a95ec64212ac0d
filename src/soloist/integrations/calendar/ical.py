"""iCalendar in and out: an :class:`EventDraft` to a VCALENDAR body, a body to entities.

An event is written with its start's own time zone: a ``ZoneInfo`` start becomes
``DTSTART;TZID=Europe/Paris`` with the matching ``VTIMEZONE``, so a weekly meeting at 09:00
stays at 09:00 local time across a daylight-saving change (a UTC start would drift by an
hour). A UTC start is written as UTC.

Reading expands recurring events over the asked range (``recurring-ical-events``: RRULE,
RDATE, EXDATE and moved occurrences). Each occurrence is one
:class:`~soloist.integrations.entities.CalendarEvent` whose ``recurrence_id`` is the
occurrence's original start; times keep the zone the server's data names. Floating times
(no zone) and all-day dates are read in the client's ``zone``, since the data says nothing
better. A body that is not iCalendar, or an event with no UID or start, is an
:class:`~soloist.errors.InvalidPayload` saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from soloist.errors import InvalidPayload
from soloist.integrations.entities import CalendarEvent, EventFields, load

_PRODID = "-//Soloist//calendar connector//EN"


class EventDraft(EventFields):
    """An event to create or to write over an existing one (its UID comes from the key)."""

    #: a transparent event does not make its time busy
    transparent: bool = False


def to_ical(draft: EventDraft, uid: str, *, stamp: datetime | None = None) -> str:
    """The VCALENDAR body of ``draft`` under ``uid``."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", _PRODID)
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", (stamp or datetime.now(UTC)).astimezone(UTC))
    if draft.all_day:
        event.add("dtstart", draft.start.date())
        event.add("dtend", draft.end.date())
    else:
        event.add("dtstart", _writable(draft.start))
        event.add("dtend", _writable(draft.end))
    if draft.summary:
        event.add("summary", draft.summary)
    if draft.location:
        event.add("location", draft.location)
    if draft.description:
        event.add("description", draft.description)
    for attendee in draft.attendees:
        address = icalendar.vCalAddress(f"mailto:{attendee.email}")
        if attendee.name:
            address.params["CN"] = attendee.name
        event.add("attendee", address, encode=False)
    if draft.rrule:
        try:
            rule = icalendar.vRecur.from_ical(draft.rrule)
            if "FREQ" not in rule:  # the parser reads any text as an empty rule
                raise ValueError("no FREQ")
            event.add("rrule", rule)
        except ValueError:
            raise InvalidPayload(
                f"the event's rrule {draft.rrule!r} is not an RFC 5545 recurrence rule",
                entity="EventDraft", field="rrule") from None
    if draft.transparent:
        event.add("transp", "TRANSPARENT")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return str(calendar.to_ical().decode())


def _writable(moment: datetime) -> datetime:
    """``moment`` in a zone iCalendar can name: an IANA zone as it is, else UTC.

    A fixed offset (``+02:00``) has no VTIMEZONE to write, and a TZID without one is read
    back by servers as floating or UTC: the same instant in UTC is the only safe form.
    """
    if isinstance(moment.tzinfo, ZoneInfo):
        return moment
    return moment.astimezone(UTC)


def free_busy_of(calendar: icalendar.Calendar, *,
                 where: str) -> Iterator[tuple[datetime, datetime]]:
    """The busy periods of a ``free-busy-query`` reply's VFREEBUSY (not the free ones)."""
    for component in calendar.walk("VFREEBUSY"):
        values = component.get("FREEBUSY", [])
        for value in values if isinstance(values, list) else [values]:
            if str(value.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            try:
                begin, finish = value.dt
            except (TypeError, ValueError):
                raise InvalidPayload(f"{where} has a FREEBUSY value that is not a period",
                                     entity="FreeBusy", field="freebusy") from None
            if isinstance(finish, timedelta):
                finish = begin + finish
            yield begin, finish


def parse_calendar(body: str | bytes, *, where: str) -> icalendar.Calendar:
    """``body`` as a VCALENDAR, or :class:`InvalidPayload` (``where`` names the resource)."""
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except (ValueError, IndexError, KeyError) as error:
        raise InvalidPayload(f"{where} is not valid iCalendar: {_short(error)}",
                             entity="CalendarEvent", field="body") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise InvalidPayload(f"{where} is not valid iCalendar: no VCALENDAR",
                             entity="CalendarEvent", field="body")
    return calendar


def events_of(calendar: icalendar.Calendar, *, where: str, zone: tzinfo,
              etag: str | None = None) -> list[CalendarEvent]:
    """The VEVENTs of ``calendar`` as they are stored (a recurring one once, with its rule)."""
    return [_event(c, where=where, zone=zone, etag=etag, expanded=False)
            for c in calendar.walk("VEVENT")]


def occurrences(calendar: icalendar.Calendar, start: datetime, end: datetime, *,
                where: str, zone: tzinfo, etag: str | None = None) -> Iterator[CalendarEvent]:
    """Every occurrence of ``calendar``'s events that overlaps ``[start, end)``."""
    found = _expand(calendar, start, end, where=where)
    for component in found:
        yield _event(component, where=where, zone=zone, etag=etag, expanded=True)


def _expand(calendar: icalendar.Calendar, start: datetime, end: datetime, *,
            where: str) -> list[Any]:
    try:
        return list(recurring_ical_events.of(calendar).between(start, end))
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidPayload(f"{where} has an event that cannot be expanded: {_short(error)}",
                             entity="CalendarEvent", field="rrule") from None


def _event(component: Any, *, where: str, zone: tzinfo, etag: str | None,
           expanded: bool) -> CalendarEvent:
    uid = str(component.get("UID", "")).strip()
    if not uid:
        raise InvalidPayload(f"{where} has an event without a UID",
                             entity="CalendarEvent", field="uid")
    if "DTSTART" not in component:
        raise InvalidPayload(f"{where} has an event ({uid}) without a start",
                             entity="CalendarEvent", field="start")
    raw_start = component.decoded("DTSTART")
    all_day = not isinstance(raw_start, datetime)
    start = _aware(raw_start, zone)
    if "DTEND" in component:
        end = _aware(component.decoded("DTEND"), zone)
    elif "DURATION" in component:
        end = start + component.decoded("DURATION")
    else:
        end = start + (timedelta(days=1) if all_day else timedelta())
    payload: dict[str, Any] = {
        "uid": uid,
        "summary": str(component.get("SUMMARY", "")),
        "start": start,
        "end": end,
        "all_day": all_day,
        "location": str(component.get("LOCATION", "")),
        "description": str(component.get("DESCRIPTION", "")),
        "attendees": _attendees(component.get("ATTENDEE")),
        "etag": etag,
    }
    if "RECURRENCE-ID" in component:
        payload["recurrence_id"] = _aware(component.decoded("RECURRENCE-ID"), zone).isoformat()
    if "RRULE" in component and not expanded:
        payload["rrule"] = component["RRULE"].to_ical().decode()
    return load(CalendarEvent, payload)


def busy_periods(calendar: icalendar.Calendar, start: datetime, end: datetime, *,
                 where: str, zone: tzinfo) -> Iterator[tuple[datetime, datetime]]:
    """The times ``calendar``'s opaque, not cancelled occurrences take in ``[start, end)``."""
    found = _expand(calendar, start, end, where=where)
    for component in found:
        if str(component.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            continue
        event = _event(component, where=where, zone=zone, etag=None, expanded=True)
        yield max(event.start, start), min(event.end, end)


def _attendees(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    found = []
    for address in value if isinstance(value, list) else [value]:
        email = str(address)
        if email.lower().startswith("mailto:"):
            email = email[len("mailto:"):]
        found.append({"name": str(getattr(address, "params", {}).get("CN", "")),
                      "email": email})
    return found


def _aware(value: date | datetime, zone: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=zone)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _short(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


def no_event(where: str) -> InvalidPayload:
    """The error for a calendar resource that holds no VEVENT."""
    return InvalidPayload(f"{where} holds no event (no VEVENT)",
                          entity="CalendarEvent", field="body")
