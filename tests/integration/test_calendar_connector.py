"""The calendar connector end to end: playbooks whose steps call ``cal.*`` in a worker,
against a real Radicale, on SQLite and PostgreSQL; what exists is counted on the server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from support.caldav_server import CalDAVTestServer
from support.netutil import free_port
from support.runs import drain
from support.workspaces import write_workspace

from soloist.errors import DeterministicError, InvalidPayload, Throttled, TransientError
from soloist.execution.context import ToolCall
from soloist.integrations.calendar.connector import CalendarConnector
from soloist.workspace import Workspace

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "planner-s3cret"  # secrets are at least 8 characters (to be redacted safely)

TASKS = '''
def boom(ctx):
    raise ValueError("the booking was refused downstream")
'''

PLAYBOOKS = {
    "book": """
name: book
inputs: {type: object, properties: {summary: {type: string}, fail: {type: boolean}}}
steps:
  - id: create
    tool: cal.create
    args:
      summary: "{{ inputs.summary }}"
      start: "2026-06-01T10:00:00+02:00"
      end: "2026-06-01T11:00:00+02:00"
      location: Room 4
      attendees: [ada@example.com, {name: Bob, email: bob@example.com}]
  - {id: later, python: "tasks:boom", when: "inputs.fail"}
""",
    "weekly": """
name: weekly
steps:
  - id: create
    tool: cal.create
    args: {summary: Standup, start: "2026-06-01T09:00:00+02:00",
           end: "2026-06-01T09:15:00+02:00", rrule: "FREQ=WEEKLY;COUNT=4"}
  - id: list
    tool: cal.events
    args: {start: "2026-05-25T00:00:00Z", end: "2026-06-30T00:00:00Z"}
    needs: [create]
  - id: busy
    tool: cal.free_busy
    args: {start: "2026-06-01T00:00:00Z", end: "2026-06-02T00:00:00Z"}
    needs: [create]
""",
    "move": """
name: move
inputs: {type: object, properties: {href: {type: string}}}
steps:
  - id: update
    tool: cal.update
    args: {href: "{{ inputs.href }}", summary: Moved, start: "2026-06-02T10:00:00+02:00",
           end: "2026-06-02T12:00:00+02:00"}
  - id: delete
    tool: cal.delete
    args: {href: "{{ inputs.href }}"}
    needs: [update]
""",
    "list": """
name: list
inputs: {type: object, properties: {start: {type: string}}}
steps:
  - id: list
    tool: cal.events
    args: {start: "{{ inputs.start }}", end: "2026-07-01T00:00:00Z"}
""",
    "react": """
name: react
triggers:
  - event: calendar.changed
    when: "not event.payload.deleted"
    inputs: {summary: "{{ event.payload.event.summary }}"}
inputs: {type: object, properties: {summary: {type: string}}}
steps:
  - {id: seen, tool: cal.events, args: {start: "2026-06-01T00:00:00Z",
                                        end: "2026-06-02T00:00:00Z"}}
""",
}


def settings(server: CalDAVTestServer, **extra: Any) -> str:
    lines = [
        "[connectors.cal]", 'kind = "calendar"', f'url = "{server.url}"',
        f'username = "{server.user}"', 'password = "secret:CAL_PASSWORD"',
        'calendar = "calendar"', 'timezone = "Europe/Paris"', "timeout = 5",
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def caldav_server() -> Iterator[CalDAVTestServer]:
    with CalDAVTestServer(password=PASSWORD) as server:
        yield server


@pytest.fixture
def ws(tmp_path: Path, db_url: str, caldav_server: CalDAVTestServer) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml=settings(caldav_server))
    with Workspace(root, database_url=db_url) as workspace:
        workspace.secrets.set("CAL_PASSWORD", caldav_server.password, "person:test")
        workspace.deploy("person:test")
        yield workspace


def server_events(server: CalDAVTestServer) -> list[str]:
    with server.client() as dav:
        return sorted(str(e.url) for e in dav.calendar(url=server.calendar_url).events())


def put_raw(server: CalDAVTestServer, name: str, body: str) -> None:
    reply = requests.put(server.calendar_url + name, data=body,
                         headers={"Content-Type": "text/calendar; charset=utf-8"},
                         auth=(server.user, server.password), timeout=10)
    assert reply.status_code == 201, reply.text


def vevent(uid: str, summary: str, start: str = "20260601T140000Z", extra: str = "") -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\n"
            f"DTEND:20260601T150000Z\r\nSUMMARY:{summary}\r\n{extra}"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def output(ws: Workspace, run_id: str, step: str) -> Any:
    return next(s.output for s in ws.show(run_id).steps if s.step_id == step)


def test_create_in_a_run_then_a_replay_of_its_key_makes_no_second_event(
        ws: Workspace, caldav_server: CalDAVTestServer) -> None:
    run_id = ws.start("book", {"summary": "Planning", "fail": False})
    assert drain(ws, run_id) == "done"
    [intent] = ws.show(run_id).intents
    assert intent.status == "dispatched" and intent.tool == "cal.create"
    made = intent.result
    assert made["created"] is True
    assert made["event"]["summary"] == "Planning"
    assert made["event"]["location"] == "Room 4"
    assert [a["email"] for a in made["event"]["attendees"]] == ["ada@example.com",
                                                                 "bob@example.com"]
    assert datetime.fromisoformat(made["event"]["start"]) == datetime(2026, 6, 1, 10,
                                                                      tzinfo=PARIS)
    assert len(server_events(caldav_server)) == 1

    # The process died after the server made the event, before the intent was recorded:
    # dispatch calls the tool again with the same key.
    tool = ws.tools.get("cal.create")
    again = tool.invoke(intent.args, ToolCall(run_id, "create", intent.idempotency_key,
                                              str(ws.root)))
    assert again["created"] is False
    assert (again["href"], again["uid"], again["etag"]) == (made["href"], made["uid"],
                                                            made["etag"])
    assert len(server_events(caldav_server)) == 1


def test_a_later_failure_deletes_the_event_it_created(
        ws: Workspace, caldav_server: CalDAVTestServer) -> None:
    run_id = ws.start("book", {"summary": "Doomed", "fail": True})
    assert drain(ws, run_id, "failed") == "failed"
    assert "refused downstream" in (ws.get_run(run_id).error or "")
    states = {s.step_id: s.state for s in ws.show(run_id).steps if s.kind == "step"}
    assert states["create"] == "compensated"
    assert server_events(caldav_server) == []


def test_recurring_events_are_expanded_when_listed_and_free_busy(ws: Workspace) -> None:
    run_id = ws.start("weekly")
    assert drain(ws, run_id) == "done"
    listed = output(ws, run_id, "list")
    assert [datetime.fromisoformat(e["start"]) for e in listed] == [
        datetime(2026, 6, day, 9, tzinfo=PARIS) for day in (1, 8, 15, 22)]
    assert {e["uid"] for e in listed} == {listed[0]["uid"]}
    assert all(e["recurrence_id"] for e in listed)
    assert output(ws, run_id, "busy") == [{"start": "2026-06-01T07:00:00+00:00",
                                           "end": "2026-06-01T07:15:00+00:00"}]


def test_update_with_the_current_etag_then_delete_twice(
        ws: Workspace, caldav_server: CalDAVTestServer) -> None:
    first = ws.start("book", {"summary": "Planning", "fail": False})
    drain(ws, first)
    href = ws.show(first).intents[0].result["href"]
    run_id = ws.start("move", {"href": href})
    assert drain(ws, run_id) == "done"
    updated, deleted = (i.result for i in ws.show(run_id).intents)
    assert updated["event"]["summary"] == "Moved"
    assert updated["event"]["location"] == "Room 4"  # what was not given is kept
    assert datetime.fromisoformat(updated["event"]["end"]) == datetime(2026, 6, 2, 12,
                                                                       tzinfo=PARIS)
    assert deleted == {"href": href, "deleted": True}
    assert server_events(caldav_server) == []
    # deleting what is gone is done, not an error
    tool = ws.tools.get("cal.delete")
    call = ToolCall(run_id, "delete", "k-again", str(ws.root))
    assert tool.invoke({"href": href}, call) == {"href": href, "deleted": False}


def test_update_and_delete_by_uid_of_an_event_made_elsewhere(
        ws: Workspace, caldav_server: CalDAVTestServer) -> None:
    put_raw(caldav_server, "outside.ics", vevent("outside-1@example.com", "Lunch"))
    call = ToolCall("r", "s", "k-1", str(ws.root))
    updated = ws.tools.get("cal.update").invoke(
        {"uid": "outside-1@example.com", "summary": "Long lunch"}, call)
    assert updated["uid"] == "outside-1@example.com"
    assert updated["href"].endswith("/outside.ics")
    assert updated["event"]["summary"] == "Long lunch"
    with pytest.raises(DeterministicError, match="has no event with UID nobody@x"):
        ws.tools.get("cal.update").invoke({"uid": "nobody@x", "summary": "x"}, call)
    assert ws.tools.get("cal.delete").invoke({"uid": "outside-1@example.com"}, call)[
        "deleted"] is True
    assert server_events(caldav_server) == []


def test_calendar_changed_starts_a_playbook_through_the_scheduler(
        ws: Workspace, caldav_server: CalDAVTestServer) -> None:
    [report] = ws.sync_connector("cal")  # the calendar is empty: nothing, but a token
    assert report.accepted == 0
    put_raw(caldav_server, "new.ics", vevent("new-1@example.com", "Dentist"))
    [report] = ws.sync_connector("cal")
    assert report.accepted == 1
    assert ws.sync_connector("cal")[0].accepted == 0  # nothing new since
    ws.scheduler("s").tick()
    [run] = ws.runs()
    assert run.playbook == "react" and run.inputs == {"summary": "Dentist"}
    assert drain(ws, run.id) == "done"

    # a deletion is an event too (filtered out by this trigger's when)
    requests.delete(caldav_server.calendar_url + "new.ics",
                    auth=(caldav_server.user, caldav_server.password), timeout=10)
    assert ws.sync_connector("cal")[0].accepted == 1
    ws.scheduler("s").tick()
    assert len(ws.runs()) == 1


def source_of(ws: Workspace) -> Any:
    connector = ws.connectors.get("cal")
    assert isinstance(connector, CalendarConnector)
    [source] = connector.sources()
    return source


@pytest.mark.parametrize("sync_tokens", [True, False])
def test_changes_by_token_or_ctag_in_batches_and_a_forgotten_token(
        tmp_path: Path, caldav_server: CalDAVTestServer, sync_tokens: bool) -> None:
    toml = settings(caldav_server, sync_tokens=str(sync_tokens).lower())
    root = write_workspace(tmp_path / "ws", {}, toml=toml)
    with Workspace(root) as ws:
        ws.secrets.set("CAL_PASSWORD", caldav_server.password, "person:test")
        source = source_of(ws)
        for n in range(3):
            put_raw(caldav_server, f"e{n}.ics", vevent(f"e{n}@x", f"Event {n}"))
        first = source.poll(None, 2)  # room for two: the third waits in the cursor
        assert [e.payload["event"]["summary"] for e in first.events] == ["Event 0", "Event 1"]
        assert first.more and len(first.cursor["pending"]) == 1
        second = source.poll(first.cursor, 10)
        assert [e.payload["event"]["summary"] for e in second.events] == ["Event 2"]
        assert not second.more
        assert source.poll(second.cursor, 10).events == []
        requests.delete(caldav_server.calendar_url + "e1.ics",
                        auth=(caldav_server.user, caldav_server.password), timeout=10)
        third = source.poll(second.cursor, 10)
        [gone] = third.events
        assert gone.payload == {"connector": "cal", "href": "/planner/calendar/e1.ics",
                                "event": None, "deleted": True}
        assert "#deleted#" in gone.delivery_id
        if sync_tokens:  # a token the server forgot: everything again, same delivery ids
            again = source.poll({"token": "http://radicale.org/ns/sync/unknown"}, 10)
            ids = {e.delivery_id for e in first.events + second.events}
            assert {e.delivery_id for e in again.events} == ids - {first.events[1].delivery_id}


BAD_GUEST = "ATTENDEE;CN=Nobody:mailto:not-an-address\r\n"  # Radicale stores it as it is


def test_an_event_that_does_not_map_becomes_an_event_with_its_problem(
        caldav_server: CalDAVTestServer, ws: Workspace) -> None:
    source = source_of(ws)
    cursor = source.poll(None, 10).cursor
    put_raw(caldav_server, "bad.ics", vevent("bad@x", "Bad guest", extra=BAD_GUEST))
    [bad] = source.poll(cursor, 10).events
    assert bad.payload["event"] is None and bad.payload["deleted"] is False
    assert "attendees[0].email" in bad.payload["problem"]


def test_a_malformed_event_on_the_server_fails_the_step_naming_the_field(
        ws: Workspace, caldav_server: CalDAVTestServer) -> None:
    put_raw(caldav_server, "bad.ics", vevent("bad@x", "Bad guest", extra=BAD_GUEST))
    with pytest.raises(InvalidPayload) as caught:
        ws.tools.get("cal.events").invoke(
            {"start": "2026-05-01T00:00:00Z", "end": "2026-07-01T00:00:00Z"},
            ToolCall("r", "s", "k", str(ws.root)))
    assert caught.value.field == "attendees[0].email"
    run_id = ws.start("list", {"start": "2026-05-01T00:00:00Z"})
    assert drain(ws, run_id, "failed") == "failed"
    error = ws.get_run(run_id).error or ""
    assert "does not map to a CalendarEvent: attendees[0].email" in error
    # deterministic: one attempt, no retry
    assert [s.attempt for s in ws.show(run_id).steps if s.step_id == "list"] == [1]


def test_naive_times_and_bad_fields_are_refused_in_one_sentence(ws: Workspace) -> None:
    call = ToolCall("r", "s", "k", str(ws.root))
    with pytest.raises(DeterministicError, match="timezone") as naive:
        ws.tools.get("cal.events").invoke(
            {"start": "2026-06-01T00:00:00", "end": "2026-06-02T00:00:00Z"}, call)
    assert "\n" not in str(naive.value)
    with pytest.raises(InvalidPayload) as backwards:
        ws.tools.get("cal.create").invoke(
            {"summary": "x", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T09:00:00Z"},
            call)
    assert "end is before start" in str(backwards.value)
    with pytest.raises(InvalidPayload) as rule:
        ws.tools.get("cal.create").invoke(
            {"summary": "x", "start": "2026-06-01T10:00:00Z", "end": "2026-06-01T11:00:00Z",
             "rrule": "EVERY TUESDAY"}, call)
    assert rule.value.field == "rrule"


def test_connector_test_bad_credentials_and_a_server_that_is_down(
        tmp_path: Path, caldav_server: CalDAVTestServer) -> None:
    root = write_workspace(tmp_path / "ws", {}, toml=settings(caldav_server))
    with Workspace(root) as ws:
        ws.secrets.set("CAL_PASSWORD", caldav_server.password, "person:test")
        assert ws.test_connector("cal") == (
            f"logged in to 127.0.0.1:{caldav_server.port} as planner and found the "
            "calendar calendar at /planner/calendar/")
    with Workspace(root) as ws:
        ws.secrets.set("CAL_PASSWORD", "wrong-password", "person:test")
        with pytest.raises(DeterministicError) as refused:
            ws.test_connector("cal")
        assert str(refused.value) == (f"cannot log in to 127.0.0.1:{caldav_server.port} "
                                      "as planner: authentication failed")
    down = CalDAVTestServer.__new__(CalDAVTestServer)  # only for its settings text
    down.user, down.port = "planner", free_port()
    toml = settings(caldav_server).replace(f":{caldav_server.port}/", f":{down.port}/")
    root = write_workspace(tmp_path / "down", {}, toml=toml)
    with Workspace(root) as ws:
        ws.secrets.set("CAL_PASSWORD", "some-password", "person:test")
        with pytest.raises(TransientError, match=f"cannot reach 127.0.0.1:{down.port}"):
            ws.test_connector("cal")


def test_a_server_that_does_not_answer_times_out_as_transient(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        toml = (f'[connectors.cal]\nkind = "calendar"\nurl = "http://127.0.0.1:{port}/"\n'
                'username = "u"\npassword = "secret:CAL_PASSWORD"\n'
                'calendar = "/u/calendar/"\ntimeout = 0.5\n')
        root = write_workspace(tmp_path / "ws", {}, toml=toml)
        with Workspace(root) as ws:
            ws.secrets.set("CAL_PASSWORD", "some-password", "person:test")
            with pytest.raises(TransientError, match="did not answer PROPFIND") as slow:
                ws.test_connector("cal")
            assert not isinstance(slow.value, Throttled)


def test_the_account_s_first_calendar_when_none_is_named(
        tmp_path: Path, caldav_server: CalDAVTestServer) -> None:
    toml = settings(caldav_server).replace('calendar = "calendar"\n', "")
    root = write_workspace(tmp_path / "ws", {}, toml=toml)
    with Workspace(root) as ws:
        ws.secrets.set("CAL_PASSWORD", caldav_server.password, "person:test")
        connector = ws.connectors.get("cal")
        assert isinstance(connector, CalendarConnector)
        assert connector.calendar_url() == caldav_server.calendar_url
    missing = settings(caldav_server).replace('calendar = "calendar"', 'calendar = "work"')
    root = write_workspace(tmp_path / "ws2", {}, toml=missing)
    with Workspace(root) as ws:
        ws.secrets.set("CAL_PASSWORD", caldav_server.password, "person:test")
        with pytest.raises(DeterministicError, match="has no calendar named 'work' for "
                           r"planner \(found: calendar\)"):
            ws.test_connector("cal")


def test_a_full_backlog_pauses_the_source_and_nothing_is_lost(
        tmp_path: Path, db_url: str, caldav_server: CalDAVTestServer) -> None:
    root = write_workspace(tmp_path / "ws", {"react": PLAYBOOKS["react"]},
                           toml=settings(caldav_server, backlog=2))
    with Workspace(root, database_url=db_url) as ws:
        ws.secrets.set("CAL_PASSWORD", caldav_server.password, "person:test")
        ws.deploy("person:test")
        for n in range(3):
            put_raw(caldav_server, f"e{n}.ics", vevent(f"e{n}@x", f"Event {n}"))
        [report] = ws.sync_connector("cal")
        assert (report.accepted, report.more) == (2, True)
        assert ws.sync_connector("cal")[0].paused  # full: the server is not asked
        ws.scheduler("s").tick()  # the backlog goes onto the bus and starts two runs
        [report] = ws.sync_connector("cal")
        assert (report.accepted, report.more) == (1, False)  # the third, from the cursor
        ws.scheduler("s").tick()
        assert sorted(r.inputs["summary"] for r in ws.runs()) == [
            "Event 0", "Event 1", "Event 2"]
