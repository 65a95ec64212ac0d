"""iCalendar writing and reading for the CalDAV client, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from soloist.errors import InvalidPayload
from soloist.integrations.calendar import EventDraft, href_for, uid_for
from soloist.integrations.calendar.ical import events_of, occurrences, parse_calendar, to_ical
from soloist.integrations.entities import Contact, load

PARIS = ZoneInfo("Europe/Paris")


def _draft(**fields: object) -> EventDraft:
    start = datetime(2026, 10, 19, 9, tzinfo=PARIS)
    return EventDraft.model_validate(
        {"summary": "Review", "start": start, "end": start + timedelta(hours=1), **fields})


def test_keys_give_stable_distinct_names_and_uids() -> None:
    assert href_for("a") == href_for("a") != href_for("b")
    assert uid_for("a") == uid_for("a") != uid_for("b")
    assert href_for("a").endswith(".ics") and "@" in uid_for("a")


def test_a_draft_round_trips_with_its_zone_and_attendees() -> None:
    guest = Contact(name="Grace Hopper", email="grace@example.com")
    body = to_ical(_draft(attendees=(guest,), rrule="FREQ=WEEKLY;COUNT=3"), "uid-1")
    assert "BEGIN:VTIMEZONE" in body and "TZID=Europe/Paris" in body

    [event] = events_of(parse_calendar(body, where="x.ics"), where="x.ics", zone=UTC)
    assert (event.uid, event.summary, event.attendees) == ("uid-1", "Review", (guest,))
    assert event.start == datetime(2026, 10, 19, 9, tzinfo=PARIS)
    assert event.rrule == "FREQ=WEEKLY;COUNT=3"

    # Paris leaves summer time on Sunday 25 October: from the 26th it is UTC+1, still 09:00
    found = list(occurrences(parse_calendar(body, where="x.ics"),
                             datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                             where="x.ics", zone=UTC))
    assert [e.start.hour for e in found] == [9, 9, 9]
    assert [e.start.day for e in found] == [19, 26, 2]
    assert [e.start.utcoffset() for e in found] == [timedelta(hours=2), timedelta(hours=1),
                                                    timedelta(hours=1)]


def test_an_all_day_draft_is_written_as_dates() -> None:
    body = to_ical(_draft(start=datetime(2026, 5, 1, tzinfo=PARIS),
                          end=datetime(2026, 5, 2, tzinfo=PARIS), all_day=True), "holiday")
    assert "DTSTART;VALUE=DATE:20260501" in body and "DTEND;VALUE=DATE:20260502" in body


def test_bad_input_is_an_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="not an RFC 5545 recurrence rule"):
        to_ical(_draft(rrule="every monday"), "uid-2")
    with pytest.raises(InvalidPayload, match=r"to an EventDraft: .*end is before start"):
        load(EventDraft, {"start": datetime(2026, 10, 19, 9, tzinfo=PARIS),
                          "end": datetime(2026, 10, 19, 8, tzinfo=PARIS)})
    with pytest.raises(InvalidPayload, match=r"^x\.ics is not valid iCalendar"):
        parse_calendar("BEGIN:VCALENDAR\r\nnonsense", where="x.ics")
    with pytest.raises(InvalidPayload, match="without a UID") as caught:
        events_of(parse_calendar("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260101T000000Z"
                                 "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", where="x.ics"),
                  where="x.ics", zone=UTC)
    assert caught.value.field == "uid"
