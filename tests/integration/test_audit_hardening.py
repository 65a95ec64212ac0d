"""The audit trail notices what is missing: a lost tail, an emptied log, a chain rewritten
whole; anchors kept outside the store catch what the chain alone cannot. SQLite and
PostgreSQL, tampered with as someone with write access to the database would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.workspaces import write_workspace

from soloist.errors import InvalidState, NotFound, StoreError, UserError
from soloist.memory.episodic import verify
from soloist.store import open_store
from soloist.store.base import NewEvent
from soloist.store.repositories import chain_hash
from soloist.store.seam import dumps
from soloist.workspace import Workspace

EVENTS = 10


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root, database_url=db_url) as workspace:
        append(workspace, EVENTS)
        yield workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the workspace, where the operator keeps anchors and keys."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def append(ws: Workspace, n: int) -> None:
    for i in range(n):
        with ws.store.transaction() as tx:
            tx.events.append(NewEvent("test.event", {"i": i, "text": f"entry {i}"},
                                      actor="person:ann"))


class Attacker:
    """Someone who can write the database: the append-only triggers are no obstacle."""

    def __init__(self, url: str) -> None:
        self.url = url

    def sql(self, statement: str, *params: Any) -> None:
        if self.url.startswith("sqlite"):
            import sqlite3

            con = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                con.execute("DROP TRIGGER IF EXISTS events_no_update")
                con.execute("DROP TRIGGER IF EXISTS events_no_delete")
                con.execute(statement.replace("%s", "?"), params)
                con.commit()
            finally:
                con.close()
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as con:
                con.execute("ALTER TABLE events DISABLE TRIGGER USER")
                con.execute(statement, params)  # type: ignore[arg-type]

    def delete_from(self, seq: int) -> None:
        self.sql("DELETE FROM events WHERE seq >= %s", seq)

    def set_head(self, seq: int, digest: str) -> None:
        self.sql("UPDATE chain_head SET seq = %s, hash = %s WHERE id = 1", seq, digest)

    def rewrite(self, ws: Workspace, seq: int, data: dict[str, Any]) -> None:
        """Edit one event and hash the chain again from there on, head included: a log
        that is consistent in itself."""
        with ws.store.read() as tx:
            rows = tx.events.scan(0, 10_000)
        prev = rows[seq - 2].hash if seq > 1 else ""
        for row in rows[seq - 1:]:
            if row.seq == seq:
                row.data = data
            event = NewEvent(row.kind, row.data, row.run_id, row.step_id, row.actor, row.ts)
            digest = chain_hash(prev, row.seq, event, dumps(row.data))
            self.sql("UPDATE events SET data = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                     dumps(row.data), prev, digest, row.seq)
            prev = digest
        self.set_head(rows[-1].seq, prev)


@pytest.fixture
def attacker(ws: Workspace) -> Attacker:
    return Attacker(ws.store.url)


def head_hash(ws: Workspace, seq: int) -> str:
    return ws.log(after=seq - 1, limit=1)[0].hash


# -- the chain head ----------------------------------------------------------------------


def test_an_intact_log_reports_its_head(ws: Workspace) -> None:
    report = ws.verify()
    assert report.ok and report.checked == EVENTS
    assert report.head is not None
    assert (report.head.seq, report.head.hash) == (EVENTS, head_hash(ws, EVENTS))


def test_deleting_the_last_events_is_a_missing_tail(ws: Workspace, attacker: Attacker) -> None:
    digest = head_hash(ws, EVENTS)
    attacker.delete_from(EVENTS - 2)
    report = ws.verify()
    assert not report.ok and report.cause == "tail"
    assert report.broken_at == EVENTS - 2 and report.checked == EVENTS - 3
    assert (f"the head names event {EVENTS} (hash {digest[:12]}...) but the log ends at "
            f"event {EVENTS - 3}: events {EVENTS - 2} to {EVENTS} are missing"
            ) in report.problem


def test_deleting_only_the_last_event_is_caught(ws: Workspace, attacker: Attacker) -> None:
    attacker.delete_from(EVENTS)
    report = ws.verify()
    assert not report.ok and report.broken_at == EVENTS
    assert f"event {EVENTS} is missing" in report.problem


def test_deleting_every_event_is_an_emptied_log(ws: Workspace, attacker: Attacker) -> None:
    attacker.delete_from(1)
    report = ws.verify()
    assert not report.ok and report.cause == "tail" and report.broken_at == 1
    assert report.checked == 0
    assert f"the head names event {EVENTS}" in report.problem
    assert "the log is empty" in report.problem


def test_deleting_a_middle_event_is_a_gap(ws: Workspace, attacker: Attacker) -> None:
    attacker.sql("DELETE FROM events WHERE seq = %s", 4)
    report = ws.verify()
    assert not report.ok and report.cause == "chain" and report.broken_at == 4
    assert "event 4 is missing (next is 5)" in report.problem


def test_an_edited_row_breaks_the_chain(ws: Workspace, attacker: Attacker) -> None:
    attacker.sql("UPDATE events SET data = %s WHERE seq = %s", '{"forged": true}', 6)
    report = ws.verify()
    assert not report.ok and report.cause == "chain" and report.broken_at == 6
    assert "edited" in report.problem and report.checked == 5


def test_a_log_that_goes_on_past_its_head_is_caught(ws: Workspace,
                                                    attacker: Attacker) -> None:
    attacker.set_head(7, head_hash(ws, 7))
    report = ws.verify()
    assert not report.ok and report.cause == "head" and report.broken_at == 8
    assert "goes on past its head" in report.problem


def test_a_head_with_another_hash_is_caught(ws: Workspace, attacker: Attacker) -> None:
    attacker.set_head(EVENTS, "f" * 64)
    report = ws.verify()
    assert not report.ok and report.cause == "head" and report.broken_at == EVENTS


def test_a_deleted_head_record_is_caught_and_stops_appends(ws: Workspace,
                                                           attacker: Attacker) -> None:
    attacker.sql("DELETE FROM chain_head WHERE id = %s", 1)
    report = ws.verify()
    assert not report.ok and report.cause == "head" and "chain head record" in report.problem
    with pytest.raises(StoreError, match="chain head record is gone"):
        append(ws, 1)


def test_events_appended_after_a_lost_tail_leave_a_gap(ws: Workspace,
                                                       attacker: Attacker) -> None:
    attacker.delete_from(EVENTS - 1)
    append(ws, 2)  # the next append chains onto the head, not onto the last row
    report = ws.verify()
    assert not report.ok and report.broken_at == EVENTS - 1
    assert f"event {EVENTS - 1} is missing (next is {EVENTS + 1})" in report.problem


def test_verify_while_others_append_never_cries_wolf(ws: Workspace) -> None:
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:  # another process, on a store of its own
        other = open_store(ws.store.url)
        try:
            while not stop.is_set():
                with other.transaction() as tx:
                    tx.events.extend([NewEvent("busy", {"n": len(written), "j": j})
                                      for j in range(2)])
                written.append(2)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    reports = []
    try:
        while len(reports) < 200 and (len(reports) < 5 or len(written) < 20):
            reports.append(verify(ws.store, page=3))  # small pages: many reads per pass
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert all(r.ok for r in reports), [r.problem for r in reports if not r.ok]
    assert len(written) >= 20 and reports[-1].checked > EVENTS
    assert verify(ws.store).checked == EVENTS + sum(written)


# -- anchors -----------------------------------------------------------------------------


def test_anchor_appends_the_head_and_verify_checks_it(ws: Workspace, outside: Path) -> None:
    path = outside / "anchors.jsonl"
    first = ws.anchor(path)
    append(ws, 3)
    second = ws.anchor(path)
    assert (first.seq, first.hash) == (EVENTS, head_hash(ws, EVENTS))
    assert second.seq == EVENTS + 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [EVENTS, EVENTS + 3]
    assert set(lines[0]) == {"format", "seq", "hash", "time"}
    report = ws.verify(anchor=path)
    assert report.ok and report.anchors == 2 and report.anchor_seq == EVENTS + 3


def test_a_chain_rewritten_whole_is_caught_only_by_an_anchor(
        ws: Workspace, attacker: Attacker, outside: Path) -> None:
    path = outside / "anchors.jsonl"
    anchored = ws.anchor(path)
    append(ws, 2)
    attacker.rewrite(ws, 3, {"i": 2, "text": "entry 2, forged"})
    assert ws.verify().ok  # consistent in itself: the chain and the head agree
    report = ws.verify(anchor=path)
    assert not report.ok and report.cause == "anchor" and report.broken_at == anchored.seq
    assert "line 1 of" in report.problem and "rewritten" in report.problem
    assert f"hash {anchored.hash[:12]}..." in report.problem
    with pytest.raises(InvalidState, match="nothing was anchored"):
        ws.anchor(path)  # a rewritten log cannot get a fresh anchor in the same file
    assert len(path.read_text().splitlines()) == 1


def test_a_tail_cut_with_the_head_moved_back_is_caught_by_an_anchor(
        ws: Workspace, attacker: Attacker, outside: Path) -> None:
    path = outside / "anchors.jsonl"
    ws.anchor(path)
    attacker.delete_from(EVENTS - 2)
    attacker.set_head(EVENTS - 3, head_hash(ws, EVENTS - 3))
    assert ws.verify().ok
    report = ws.verify(anchor=path)
    assert not report.ok and report.cause == "anchor" and report.broken_at == EVENTS - 2
    assert f"names event {EVENTS}" in report.problem
    assert f"the log ends at event {EVENTS - 3}" in report.problem


def test_an_emptied_log_with_its_head_reset_is_caught_by_an_anchor(
        ws: Workspace, attacker: Attacker, outside: Path) -> None:
    path = outside / "anchors.jsonl"
    ws.anchor(path)
    attacker.delete_from(1)
    attacker.set_head(0, "")
    report = ws.verify(anchor=path)
    assert not report.ok and "the log is empty" in report.problem


def test_a_signed_anchor_checks_with_its_key(ws: Workspace, outside: Path) -> None:
    key = outside / "anchor.key"
    key.write_bytes(b"k" * 32 + b"\n")
    path = outside / "anchors.jsonl"
    anchor = ws.anchor(path, key)
    assert anchor.hmac_sha256 is not None and len(anchor.hmac_sha256) == 64
    assert ws.verify(path, key).ok
    with pytest.raises(UserError, match="are signed; pass --key"):
        ws.verify(path)


def test_a_wrong_signature_is_broken(ws: Workspace, outside: Path) -> None:
    key, other = outside / "anchor.key", outside / "other.key"
    key.write_bytes(b"k" * 32)
    other.write_bytes(b"o" * 32)
    path = outside / "anchors.jsonl"
    ws.anchor(path, key)
    report = ws.verify(path, other)
    assert not report.ok and report.cause == "anchor" and report.broken_at is None
    assert "line 1" in report.problem and "wrong signature" in report.problem
    with pytest.raises(InvalidState, match=r"wrong signature.*nothing was anchored"):
        ws.anchor(path, other)


def test_an_edited_signed_line_is_broken(ws: Workspace, attacker: Attacker,
                                         outside: Path) -> None:
    key = outside / "anchor.key"
    key.write_bytes(b"k" * 32)
    path = outside / "anchors.jsonl"
    ws.anchor(path, key)
    attacker.rewrite(ws, 2, {"forged": True})
    line = json.loads(path.read_text())
    line["hash"] = head_hash(ws, EVENTS)  # the forger updates the anchor but cannot sign
    path.write_text(json.dumps(line) + "\n")
    report = ws.verify(path, key)
    assert not report.ok and "wrong signature" in report.problem


def test_an_unsigned_line_in_a_signed_file_is_broken(ws: Workspace, outside: Path) -> None:
    key = outside / "anchor.key"
    key.write_bytes(b"k" * 32)
    path = outside / "anchors.jsonl"
    ws.anchor(path, key)
    ws.anchor(outside / "plain.jsonl")
    path.write_text(path.read_text() + (outside / "plain.jsonl").read_text())
    report = ws.verify(path, key)
    assert not report.ok and "line 2" in report.problem and "not signed" in report.problem


def test_a_garbled_line_among_anchors_is_broken(ws: Workspace, outside: Path) -> None:
    path = outside / "anchors.jsonl"
    ws.anchor(path)
    path.write_text(path.read_text() + '{"format": "soloist-anchor/1", "seq": "x"}\n')
    report = ws.verify(anchor=path)
    assert not report.ok and "line 2" in report.problem and report.cause == "anchor"


def test_an_anchor_of_the_empty_log(tmp_path: Path, db_url: str, outside: Path) -> None:
    root = write_workspace(tmp_path / "empty", {})
    with Workspace(root, database_url=db_url) as ws:
        anchor = ws.anchor(outside / "anchors.jsonl")
        assert (anchor.seq, anchor.hash) == (0, "")
        append(ws, 2)
        assert ws.verify(anchor=outside / "anchors.jsonl").ok


@pytest.mark.parametrize("where", ["state_dir", "inside_state", "secret_key"])
def test_an_anchor_is_refused_inside_the_store(ws: Workspace, where: str) -> None:
    state = ws.settings.state_dir
    state.mkdir(exist_ok=True)
    target = {"state_dir": state, "inside_state": state / "anchors.jsonl",
              "secret_key": ws.settings.secret_key_file}[where]
    with pytest.raises(UserError, match="outside the workspace"):
        ws.anchor(target)
    assert not (state / "anchors.jsonl").exists()


def test_an_anchor_is_refused_on_the_sqlite_file_wherever_it_is(tmp_path: Path,
                                                                 outside: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    db = outside / "store.db"
    with Workspace(root, database_url=f"sqlite:///{db}") as ws:
        for target in (db, outside / "store.db-wal", outside / "." / "store.db"):
            with pytest.raises(UserError, match="workspace's own files"):
                ws.anchor(target)
        link, hard = outside / "innocent.jsonl", outside / "hard.jsonl"
        link.symlink_to(db)
        hard.hardlink_to(db)
        for target in (link, hard):
            with pytest.raises(UserError, match="workspace's own files"):
                ws.anchor(target)


def test_the_anchor_file_is_not_its_key(ws: Workspace, outside: Path) -> None:
    key = outside / "anchor.key"
    key.write_bytes(b"k" * 32)
    with pytest.raises(UserError, match="is the key file too"):
        ws.anchor(key, key)
    assert key.read_bytes() == b"k" * 32


def test_a_key_is_refused_inside_the_store(ws: Workspace, outside: Path) -> None:
    state = ws.settings.state_dir
    state.mkdir(exist_ok=True)
    key = state / "anchor.key"
    key.write_bytes(b"k" * 32)
    with pytest.raises(UserError, match="inside the workspace"):
        ws.anchor(outside / "anchors.jsonl", key)
    with pytest.raises(UserError, match="inside the workspace"):
        ws.verify(outside / "anchors.jsonl", key)
    assert not (outside / "anchors.jsonl").exists()


def test_mistakes_with_anchor_files_are_one_sentence(ws: Workspace, outside: Path) -> None:
    with pytest.raises(NotFound, match="no anchor file at"):
        ws.verify(anchor=outside / "missing.jsonl")
    (outside / "empty.jsonl").write_text("")
    with pytest.raises(UserError, match="holds no anchors yet"):
        ws.verify(anchor=outside / "empty.jsonl")
    (outside / "notes.txt").write_text("dear diary\n")
    with pytest.raises(UserError, match="is not an anchor file"):
        ws.verify(anchor=outside / "notes.txt")
    with pytest.raises(UserError, match="is not an anchor file"):
        ws.anchor(outside / "notes.txt")  # never appends to someone else's file
    assert (outside / "notes.txt").read_text() == "dear diary\n"
    with pytest.raises(UserError, match="give the file with --anchor"):
        ws.verify(key=outside / "k")
    (outside / "short.key").write_bytes(b"abc")
    with pytest.raises(UserError, match="too short"):
        ws.anchor(outside / "a.jsonl", outside / "short.key")
    with pytest.raises(NotFound, match="no key file"):
        ws.anchor(outside / "a.jsonl", outside / "missing.key")
    with pytest.raises(NotFound, match="no folder"):
        ws.anchor(outside / "nowhere" / "a.jsonl")
    with pytest.raises(UserError, match="cannot read"):
        ws.anchor(outside)


def test_a_restore_rewinds_the_log_past_later_anchors(ws: Workspace, outside: Path) -> None:
    path = outside / "anchors.jsonl"
    before = ws.anchor(path)
    ws.snapshots.create("person:ann", "snap")
    append(ws, 3)
    after = ws.anchor(path)
    ws.snapshots.restore("snap", "person:ann")
    assert ws.verify().ok
    report = ws.verify(anchor=path)
    assert not report.ok and report.cause == "anchor"
    assert report.broken_at is not None and before.seq < report.broken_at <= after.seq
    assert "line 2" in report.problem  # the anchor from before the snapshot still holds
    fresh = outside / "after-restore.jsonl"
    ws.anchor(fresh)
    assert ws.verify(anchor=fresh).ok and before.seq < after.seq
