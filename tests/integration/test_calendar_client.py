"""The CalDAV client against a real Radicale (and, for failures Radicale never gives, a
real local HTTP server that answers what the test asks)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import requests
from support.caldav_server import CalDAVTestServer
from support.netutil import HOST, free_port

from soloist.errors import DeterministicError, InvalidPayload, Throttled, TransientError
from soloist.integrations.calendar import (
    CalendarClient,
    EventDraft,
    changes,
    href_for,
    uid_for,
)
from soloist.integrations.entities import Contact

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def client(caldav_server: CalDAVTestServer) -> Iterator[CalendarClient]:
    with CalendarClient(caldav_server.calendar_url, username=caldav_server.user,
                        password=caldav_server.password, timeout=10) as calendar:
        yield calendar


def _draft(summary: str = "Planning", start: datetime | None = None,
           minutes: int = 60, **fields: object) -> EventDraft:
    begin = start or datetime(2026, 6, 1, 10, tzinfo=PARIS)
    return EventDraft.model_validate(
        {"summary": summary, "start": begin, "end": begin + timedelta(minutes=minutes),
         **fields})


def _server_hrefs(server: CalDAVTestServer) -> list[str]:
    with server.client() as dav:
        calendar = dav.calendar(url=server.calendar_url)
        return sorted(str(event.url) for event in calendar.events())


def _put_raw(server: CalDAVTestServer, name: str, body: str) -> None:
    reply = requests.put(server.calendar_url + name, data=body,
                         headers={"Content-Type": "text/calendar; charset=utf-8"},
                         auth=(server.user, server.password), timeout=10)
    assert reply.status_code == 201, reply.text


# -- create, read, update, delete -------------------------------------------------------


def test_create_puts_the_event_at_the_key_derived_resource_and_uid(
    client: CalendarClient, caldav_server: CalDAVTestServer
) -> None:
    guest = Contact(name="Ada Lovelace", email="ada@example.com")
    saved = client.create("intent-1", _draft(location="Room 4", description="Q3\nbudget",
                                             attendees=(guest,)))

    assert saved.created
    assert saved.href == f"/planner/calendar/{href_for('intent-1')}"
    assert saved.etag
    assert saved.event.uid == uid_for("intent-1")
    assert saved.event.start == datetime(2026, 6, 1, 10, tzinfo=PARIS)
    assert _server_hrefs(caldav_server) == [client.url(href_for("intent-1"))]

    stored = client.get("intent-1")
    assert stored is not None
    assert stored.etag == saved.etag
    assert stored.event.summary == "Planning"
    assert stored.event.location == "Room 4"
    assert stored.event.description == "Q3\nbudget"
    assert stored.event.attendees == (guest,)
    assert stored.event.start.tzinfo == PARIS
    assert client.get("never-created") is None


def test_creating_twice_with_one_key_makes_one_event(
    client: CalendarClient, caldav_server: CalDAVTestServer
) -> None:
    first = client.create("intent-twice", _draft())
    # a retry after a lost reply, even with a changed body, finds what the first made
    again = client.create("intent-twice", _draft(summary="Planning (retry)"))

    assert first.created and not again.created
    assert again.etag == first.etag
    assert again.event.summary == "Planning"
    assert len(_server_hrefs(caldav_server)) == 1


def test_update_needs_the_current_etag(client: CalendarClient) -> None:
    saved = client.create("intent-up", _draft())
    updated = client.update("intent-up", _draft(summary="Moved", minutes=30), etag=saved.etag or "")

    assert updated.etag and updated.etag != saved.etag
    current = client.get("intent-up")
    assert current is not None and current.event.summary == "Moved"
    with pytest.raises(DeterministicError, match="ETag is stale"):
        client.update("intent-up", _draft(summary="Lost update"), etag=saved.etag or "")
    current = client.get("intent-up")
    assert current is not None and current.event.summary == "Moved"


def test_delete_is_a_compensation_that_tolerates_an_event_already_gone(
    client: CalendarClient, caldav_server: CalDAVTestServer
) -> None:
    saved = client.create("intent-del", _draft())
    with pytest.raises(DeterministicError, match="stale"):
        client.delete("intent-del", etag='"not-the-etag"')

    assert client.delete("intent-del", etag=saved.etag) is True
    assert client.delete("intent-del") is False
    assert _server_hrefs(caldav_server) == []
    assert client.get("intent-del") is None


def test_a_uid_held_by_another_resource_is_a_deterministic_conflict(
    client: CalendarClient, caldav_server: CalDAVTestServer
) -> None:
    _put_raw(caldav_server, "someone-else.ics", _ics(uid_for("intent-dup"),
                                                      "DTSTART:20260601T080000Z"))
    with pytest.raises(DeterministicError, match="already holds UID") as caught:
        client.create("intent-dup", _draft())
    assert caught.value.kind == "deterministic"


# -- listing, time zones, recurrences, free/busy -----------------------------------------


def test_a_weekly_event_keeps_its_local_time_across_a_dst_change(client: CalendarClient) -> None:
    # Paris moves to summer time on Sunday 29 March 2026: Monday 30 March is UTC+2.
    start = datetime(2026, 3, 2, 9, tzinfo=PARIS)
    client.create("standup", _draft("Standup", start, minutes=15, rrule="FREQ=WEEKLY"))

    march = client.events(datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS))

    assert [event.start.day for event in march] == [2, 9, 16, 23, 30]
    assert {(event.start.hour, event.start.minute) for event in march} == {(9, 0)}
    assert {event.start.tzinfo for event in march} == {PARIS}
    assert [event.start.astimezone(UTC).hour for event in march] == [8, 8, 8, 8, 7]
    assert all(event.end - event.start == timedelta(minutes=15) for event in march)
    assert {event.uid for event in march} == {uid_for("standup")}
    assert march[-1].recurrence_id == "2026-03-30T09:00:00+02:00"
    assert all(event.rrule is None for event in march)  # occurrences, not the rule
    stored = client.get("standup")
    assert stored is not None and stored.event.rrule == "FREQ=WEEKLY"


def test_a_fixed_offset_start_is_stored_as_the_same_instant(client: CalendarClient) -> None:
    plus_two = timezone(timedelta(hours=2))
    saved = client.create("offset", _draft(start=datetime(2026, 6, 1, 9, tzinfo=plus_two)))
    assert saved.event.start == datetime(2026, 6, 1, 7, tzinfo=UTC)
    [listed] = client.events(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC))
    assert listed.start == datetime(2026, 6, 1, 7, tzinfo=UTC)


def test_listing_keeps_each_events_zone_and_reads_floating_and_all_day_in_the_clients(
    caldav_server: CalDAVTestServer,
) -> None:
    _put_raw(caldav_server, "floating.ics", _ics("floating", "DTSTART:20260601T120000",
                                                 "DTEND:20260601T130000"))
    _put_raw(caldav_server, "holiday.ics", _ics("holiday", "DTSTART;VALUE=DATE:20260602",
                                                "DTEND;VALUE=DATE:20260603"))
    with CalendarClient(caldav_server.calendar_url, username=caldav_server.user,
                        password=caldav_server.password, zone=PARIS) as client:
        client.create("ny", _draft("Call", datetime(2026, 6, 1, 9, tzinfo=NEW_YORK)))
        listed = client.events(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC))
        outside = client.events(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC))

    by_uid = {event.uid: event for event in listed}
    assert set(by_uid) == {"floating", "holiday", uid_for("ny")}
    assert by_uid["floating"].start == datetime(2026, 6, 1, 12, tzinfo=PARIS)
    assert by_uid[uid_for("ny")].start.tzinfo == NEW_YORK
    assert by_uid[uid_for("ny")].start.astimezone(UTC).hour == 13
    holiday = by_uid["holiday"]
    assert holiday.all_day
    assert (holiday.start, holiday.end) == (datetime(2026, 6, 2, tzinfo=PARIS),
                                            datetime(2026, 6, 3, tzinfo=PARIS))
    assert [e.start for e in listed] == sorted(e.start for e in listed)
    assert outside == []


def test_free_busy_merges_opaque_events_and_skips_transparent_and_cancelled(
    client: CalendarClient, caldav_server: CalDAVTestServer
) -> None:
    day = datetime(2026, 6, 1, 9, tzinfo=UTC)
    client.create("a", _draft("A", day, minutes=60))
    client.create("b", _draft("B", day + timedelta(minutes=30), minutes=60))
    client.create("c", _draft("C", day + timedelta(hours=3), minutes=30))
    client.create("d", _draft("Reminder", day + timedelta(hours=5), minutes=60, transparent=True))
    _put_raw(caldav_server, "off.ics", _ics("off", "DTSTART:20260601T160000Z",
                                            "DTEND:20260601T170000Z", "STATUS:CANCELLED"))

    busy = client.free_busy(day, day + timedelta(hours=10))

    # the server's free-busy-query and the fallback computed from the events agree
    assert client.busy_from_events(day, day + timedelta(hours=10)) == busy
    assert busy == [(day, day + timedelta(minutes=90)),
                    (day + timedelta(hours=3), day + timedelta(hours=3, minutes=30))]
    # a range that cuts an event gives only the part inside it
    cut = (day + timedelta(minutes=45), day + timedelta(hours=1))
    assert client.free_busy(*cut) == client.busy_from_events(*cut) == [cut]


# -- changes -------------------------------------------------------------------------------


def test_sync_token_deltas_after_create_update_and_delete(client: CalendarClient) -> None:
    first = changes(client)
    assert first.reset and first.changed == () and first.token

    saved = client.create("sync-1", _draft())
    created = changes(client, first.token)
    assert (created.changed, created.deleted) == ((saved.href,), ())
    assert not created.reset and created.token != first.token

    client.update("sync-1", _draft(summary="Renamed"), etag=saved.etag or "")
    updated = changes(client, created.token)
    assert (updated.changed, updated.deleted) == ((saved.href,), ())

    client.delete("sync-1")
    deleted = changes(client, updated.token)
    assert (deleted.changed, deleted.deleted) == ((), (saved.href,))
    assert changes(client, deleted.token).changed == ()


def test_an_unknown_sync_token_restarts_from_scratch(client: CalendarClient) -> None:
    saved = client.create("sync-2", _draft())
    restarted = changes(client, "http://radicale.org/ns/sync/unknown")
    assert restarted.reset
    assert restarted.changed == (saved.href,)


def test_without_sync_tokens_the_ctag_and_etags_say_what_changed(
    caldav_server: CalDAVTestServer,
) -> None:
    with CalendarClient(caldav_server.calendar_url, username=caldav_server.user,
                        password=caldav_server.password, use_sync_tokens=False) as client:
        kept = client.create("kept", _draft())
        first = changes(client)
        assert first.token.startswith("ctag:") and first.changed == (kept.href,)
        assert changes(client, first.token, etags=first.etags).changed == ()

        gone = client.create("gone", _draft())
        client.update("kept", _draft(summary="Renamed"), etag=kept.etag or "")
        second = changes(client, first.token, etags=first.etags)
        assert sorted(second.changed) == sorted([kept.href, gone.href])

        client.delete("gone")
        third = changes(client, second.token, etags=second.etags)
        assert (third.changed, third.deleted) == ((), (gone.href,))


# -- failures -----------------------------------------------------------------------------


def test_a_wrong_password_is_one_deterministic_sentence_without_the_secret(
    caldav_server: CalDAVTestServer,
) -> None:
    with CalendarClient(caldav_server.calendar_url, username=caldav_server.user,
                        password="wrong-horse-battery") as client:
        with pytest.raises(DeterministicError) as caught:
            client.events(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    where = f"{caldav_server.host}:{caldav_server.port}"
    assert caught.value.message == (
        f"cannot log in to {where} as planner: authentication failed")
    assert caught.value.kind == "deterministic"
    assert "wrong-horse" not in caught.value.message


def test_a_port_nothing_listens_on_is_transient() -> None:
    port = free_port()
    with CalendarClient(f"http://{HOST}:{port}/planner/calendar/", username="planner",
                        password="s3cret", timeout=5) as client:
        with pytest.raises(TransientError, match=f"cannot reach {HOST}:{port}") as caught:
            client.get("anything")
    assert caught.value.kind == "transient"
    assert "s3cret" not in caught.value.message


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    # a listening socket that is never accepted: the connection opens, no reply comes
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with CalendarClient(f"http://{HOST}:{port}/planner/calendar/", username="planner",
                            password="s3cret", timeout=0.5) as client:
            with pytest.raises(TransientError, match="did not answer GET"):
                client.get("anything")


class _Canned(BaseHTTPRequestHandler):
    """Answers every request with the server's ``status``, ``headers`` and ``body``."""

    server: _CannedServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = self.server.body.encode()
        self.send_response(self.server.status)
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CannedServer(ThreadingHTTPServer):
    status = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (set per test before a request)
    body = ""


@pytest.fixture
def canned() -> Iterator[_CannedServer]:
    server = _CannedServer((HOST, 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _canned_client(server: _CannedServer) -> CalendarClient:
    return CalendarClient(f"http://{HOST}:{server.server_address[1]}/planner/calendar/",
                          username="planner", password="s3cret", timeout=5)


def test_server_errors_and_busy_answers_are_transient(canned: _CannedServer) -> None:
    with _canned_client(canned) as client:
        canned.status, canned.headers = 500, {}
        with pytest.raises(TransientError, match="with status 500"):
            client.get("x")
        canned.status, canned.headers = 503, {"Retry-After": "7"}
        with pytest.raises(TransientError, match="busy") as caught:
            client.create("k", _draft())
        assert caught.value.retry_after == 7
        assert not isinstance(caught.value, Throttled)  # down for now: the breaker counts it
        canned.status, canned.headers = 429, {}
        with pytest.raises(TransientError, match="busy") as limited:
            client.delete("k")
        assert isinstance(limited.value, Throttled)  # a limit: a wait, no attempt spent


def test_a_malformed_body_is_an_invalid_payload_naming_the_problem(
    canned: _CannedServer,
) -> None:
    canned.headers = {"Content-Type": "text/calendar", "ETag": '"1"'}
    with _canned_client(canned) as client:
        canned.body = "this is not a calendar"
        with pytest.raises(InvalidPayload, match=r"^soloist-.*\.ics is not valid iCalendar"):
            client.get("k")
        canned.body = _ics("no-start", "SUMMARY:x")
        with pytest.raises(InvalidPayload, match=r"event \(no-start\) without a start") as caught:
            client.get("k")
        assert caught.value.field == "start"
        canned.body = _ics("reversed", "DTSTART:20260601T100000Z", "DTEND:20260601T090000Z")
        with pytest.raises(InvalidPayload, match="end is before start"):
            client.get("k")
        canned.headers = {"Content-Type": "application/xml"}
        canned.status, canned.body = 207, "<multistatus><unclosed>"
        with pytest.raises(DeterministicError,
                           match="answered REPORT /planner/calendar/ with malformed XML"):
            changes(client)
        canned.headers = {"Content-Type": "text/plain"}
        canned.body = "not xml"
        with pytest.raises(DeterministicError,
                           match=r"multistatus reply of 127\.0\.0\.1:\d+ is not XML"):
            client.events(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


def _ics(uid: str, *lines: str) -> str:
    body = "\r\n".join(lines)
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//soloist//tests//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{body}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
