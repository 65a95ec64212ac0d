"""Inbound, on SQLite and PostgreSQL: ``poll_once`` reads a source into its bounded
backlog with its cursor (integrations/ingest.py), and the scheduler's
``publish_inbound`` moves that backlog onto the event bus once, where triggers start
runs. The source is a list (tests/support/connectors.py); the connector is the probe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.connectors import PROBE_KIND, ListSource
from support.workspaces import write_workspace

from soloist.integrations import registry
from soloist.integrations.connector import Connector
from soloist.integrations.ingest import PollReport, poll_once
from soloist.workspace import Workspace

FOLLOWER = """
name: follower
triggers:
  - event: list.item
    inputs: {item: "{{ event.payload.item }}"}
steps:
  - {id: a, tool: note, args: {text: "{{ inputs.item }}"}}
"""
KEY = "probe:list"


@pytest.fixture
def ws(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setitem(registry.KINDS, "webhook", PROBE_KIND)
    root = write_workspace(tmp_path / "ws", {"follower": FOLLOWER}, toml='''
[connectors.probe]
kind = "webhook"
secret = "secret:PROBE_SECRET"
backlog = 3
''')
    with Workspace(root, database_url=db_url) as workspace:
        workspace.secrets.set("PROBE_SECRET", "probe-hook-secret-1", "person:tester")
        workspace.deploy()
        yield workspace


def probe(ws: Workspace) -> Connector:
    return ws.connectors.get("probe")


def cursor(ws: Workspace) -> object:
    with ws.store.read() as tx:
        row = tx.cursors.get("probe", "list")
    return None if row is None else row.value


def backlog(ws: Workspace) -> list[str]:
    """The delivery ids waiting in the source's backlog, oldest first."""
    with ws.store.transaction() as tx:
        return [row.delivery_id for row in tx.inbound.take_batch(KEY, 100)]


def test_a_poll_takes_only_what_the_backlog_has_room_for(ws: Workspace) -> None:
    source = ListSource([f"item {i}" for i in range(5)])
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, accepted=3, more=True)
    assert (cursor(ws), backlog(ws)) == (3, ["d-0", "d-1", "d-2"])
    # Full: the source is not even asked ("paused") until the backlog is published.
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, paused=True)
    assert source.polls == [None]
    assert ws.scheduler("s").publish_inbound(0.0) == 3
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, accepted=2)
    assert source.polls == [None, 3]
    assert (cursor(ws), backlog(ws)) == (5, ["d-3", "d-4"])


def test_a_batch_that_only_partly_fits_moves_the_cursor_to_the_last_event_kept(
        ws: Workspace) -> None:
    """A source that hands out more than the room it was given, and a backlog that
    another process filled between the read of the room and the write: what does not
    fit is left at the source, to be read again from the cursor."""
    source = ListSource([f"item {i}" for i in range(5)], ignore_limit=True)
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, accepted=3, more=True)
    assert (cursor(ws), backlog(ws)) == (3, ["d-0", "d-1", "d-2"])
    assert ws.scheduler("s").publish_inbound(0.0) == 3

    def other_deliveries() -> None:
        with ws.store.transaction() as tx:
            for n in (1, 2):
                tx.inbound.accept(KEY, f"elsewhere-{n}", {"topic": "list.item",
                                                          "payload": {"item": "x"}}, 3)

    source.ignore_limit, source.before_return = False, other_deliveries
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, accepted=1, more=True)
    assert (cursor(ws), backlog(ws)) == (4, ["elsewhere-1", "elsewhere-2", "d-3"])


def test_a_cursor_moved_by_another_writer_drops_the_whole_poll(ws: Workspace) -> None:
    def another_poller() -> None:
        with ws.store.transaction() as tx:
            assert tx.cursors.put("probe", "list", 2, None) is not None

    source = ListSource(["a", "b", "c"], before_return=another_poller)
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY)
    assert (cursor(ws), backlog(ws)) == (2, [])  # its events dropped with its cursor
    source.before_return = None
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, accepted=1)
    assert (cursor(ws), backlog(ws)) == (3, ["d-2"])


def test_a_delivery_received_again_is_acknowledged_not_stored_twice(ws: Workspace) -> None:
    source = ListSource(["a", "b", "c", "d"])
    assert poll_once(ws.store, probe(ws), source).accepted == 3
    assert ws.scheduler("s").publish_inbound(0.0) == 3
    with ws.store.transaction() as tx:  # as if the source rewound (a restored cursor)
        row = tx.cursors.get("probe", "list")
        assert row is not None and tx.cursors.put("probe", "list", 1, row.version)
    assert poll_once(ws.store, probe(ws), source) == PollReport(KEY, accepted=1,
                                                                 duplicates=2)
    assert (cursor(ws), backlog(ws)) == (4, ["d-3"])


def test_the_scheduler_publishes_the_backlog_once_and_triggers_start_runs(
        ws: Workspace) -> None:
    source = ListSource(["alpha", "beta", "gamma"])
    assert poll_once(ws.store, probe(ws), source).accepted == 3
    scheduler = ws.scheduler("s")
    first = scheduler.tick()
    assert (first["inbound"], first["events"]) == (3, 3)
    again = scheduler.tick()
    assert (again["inbound"], again["events"]) == (0, 0)
    with ws.store.read() as tx:
        assert tx.inbound.backlogs().get(KEY, 0) == 0
    ws.worker().run(until_idle=True)
    runs = ws.runs(playbook="follower")
    assert sorted(r.state for r in runs) == ["done"] * 3
    assert sorted(r.inputs["item"] for r in runs) == ["alpha", "beta", "gamma"]
    assert {r.trigger["event"] for r in runs} == {"list.item"}
