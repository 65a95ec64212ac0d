"""``soloist audit``, the real binary: the log's end against its head, and anchors kept
outside the workspace that catch a log rewritten whole (SQLite; the store-level cases run
on both backends in tests/integration/test_audit_hardening.py)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests_support import soloist

from soloist.store.base import NewEvent
from soloist.store.repositories import chain_hash
from soloist.store.seam import dumps, loads

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "company"
    soloist("init", str(root))
    soloist("deploy", "-w", str(root))
    soloist("run", "invoice", "--input", '{"customer": "Ada", "hours": 2}', "-w", str(root))
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "operator"
    folder.mkdir()
    return folder


def db(root: Path) -> sqlite3.Connection:
    """The store, opened as someone with write access to it would: no triggers in the way."""
    con = sqlite3.connect(root / ".soloist" / "state.db")
    con.row_factory = sqlite3.Row
    con.execute("DROP TRIGGER IF EXISTS events_no_update")
    con.execute("DROP TRIGGER IF EXISTS events_no_delete")
    return con


def verify(root: Path, *args: str) -> dict[str, Any]:
    out = soloist("audit", "verify", "-w", str(root), "--json", *args, check=False)
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def text(root: Path, *args: str) -> str:
    return soloist("audit", "verify", "-w", str(root), *args, check=False).stdout


def rewrite_whole(root: Path, seq: int) -> None:
    """Edit one event, hash every later one again and move the head: consistent in itself."""
    with db(root) as con:
        rows = con.execute("SELECT * FROM events ORDER BY seq").fetchall()
        prev = rows[seq - 2]["hash"] if seq > 1 else ""
        for row in rows[seq - 1:]:
            data = loads(row["data"])
            if row["seq"] == seq:
                data = {**data, "forged": True}
            event = NewEvent(row["kind"], data, row["run_id"], row["step_id"], row["actor"],
                             row["ts"])
            digest = chain_hash(prev, row["seq"], event, dumps(data))
            con.execute("UPDATE events SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                        (dumps(data), prev, digest, row["seq"]))
            prev = digest
        con.execute("UPDATE chain_head SET seq = ?, hash = ?", (rows[-1]["seq"], prev))
    con.close()


def test_verify_prints_the_head(workspace: Path) -> None:
    out = text(workspace)
    match = re.search(r"ok: (\d+) events, chain intact\nhead: event (\d+), hash ([0-9a-f]{64})",
                      out)
    assert match and match.group(1) == match.group(2), out
    report = verify(workspace)
    assert report["ok"] and report["head"] == {"seq": int(match.group(2)),
                                               "hash": match.group(3)}


def test_a_missing_tail_and_an_emptied_log_are_broken(workspace: Path) -> None:
    head = verify(workspace)["head"]
    with db(workspace) as con:
        con.execute("DELETE FROM events WHERE seq > ?", (head["seq"] - 2,))
    con.close()
    out = text(workspace)
    assert out.startswith(f"BROKEN at event {head['seq'] - 1}: the head names event "
                          f"{head['seq']} (hash {head['hash'][:12]}...) but the log ends at "
                          f"event {head['seq'] - 2}"), out
    report = verify(workspace)
    assert not report["ok"] and report["cause"] == "tail"
    with db(workspace) as con:
        con.execute("DELETE FROM events")
    con.close()
    assert "the log is empty" in text(workspace)
    assert verify(workspace)["broken_at"] == 1


def test_anchors_catch_a_chain_rewritten_whole(workspace: Path, outside: Path) -> None:
    anchors = outside / "anchors.jsonl"
    ws = ["-w", str(workspace)]
    out = soloist("audit", "anchor", "--to", str(anchors), *ws).stdout
    head = verify(workspace)["head"]
    assert out.startswith(f"anchored event {head['seq']}, hash {head['hash']} at ")
    soloist("run", "invoice", "--input", '{"customer": "Bob", "hours": 1}', *ws)
    second = json.loads(soloist("audit", "anchor", "--to", str(anchors), "--json", *ws).stdout)
    assert second["seq"] > head["seq"] and second["signed"] is False
    assert "anchors: 2 in" in text(workspace, "--anchor", str(anchors))

    rewrite_whole(workspace, 2)
    assert verify(workspace)["ok"]  # the chain alone cannot tell
    report = verify(workspace, "--anchor", str(anchors))
    assert not report["ok"] and report["cause"] == "anchor"
    assert report["broken_at"] == head["seq"]  # the first anchor that no longer matches
    out = text(workspace, "--anchor", str(anchors))
    assert out.startswith(f"BROKEN at event {head['seq']}: the anchor at line 1 of {anchors}")
    assert "rewritten" in out
    refused = soloist("audit", "anchor", "--to", str(anchors), *ws, check=False)
    assert refused.returncode == 1 and "nothing was anchored" in refused.stderr
    assert len(anchors.read_text().splitlines()) == 2


def test_signed_anchors_and_a_wrong_key(workspace: Path, outside: Path) -> None:
    key, wrong = outside / "anchor.key", outside / "wrong.key"
    key.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    wrong.write_bytes(b"fedcba9876543210fedcba9876543210\n")
    anchors = outside / "signed.jsonl"
    ws = ["-w", str(workspace)]
    out = json.loads(soloist("audit", "anchor", "--to", str(anchors), "--key", str(key),
                             "--json", *ws).stdout)
    assert out["signed"] is True
    assert "hmac_sha256" in json.loads(anchors.read_text())
    assert verify(workspace, "--anchor", str(anchors), "--key", str(key))["ok"]
    report = verify(workspace, "--anchor", str(anchors), "--key", str(wrong))
    assert not report["ok"] and "wrong signature" in report["problem"]
    unkeyed = soloist("audit", "verify", "--anchor", str(anchors), *ws, check=False)
    assert unkeyed.returncode == 1 and "are signed; pass --key" in unkeyed.stderr


def test_anchors_inside_the_workspace_store_are_refused(workspace: Path,
                                                        outside: Path) -> None:
    ws = ["-w", str(workspace)]
    for target in (workspace / ".soloist" / "anchors.jsonl", workspace / ".soloist" / "state.db"):
        result = soloist("audit", "anchor", "--to", str(target), *ws, check=False)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("error: ") and "outside the workspace" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (workspace / ".soloist" / "anchors.jsonl").exists()
    key = workspace / ".soloist" / "anchor.key"
    key.write_bytes(b"k" * 32)
    result = soloist("audit", "anchor", "--to", str(outside / "a.jsonl"), "--key", str(key),
                     *ws, check=False)
    assert result.returncode == 1 and "outside the workspace" in result.stderr
