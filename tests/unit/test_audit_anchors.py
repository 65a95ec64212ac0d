"""The anchor file format and its signatures, without a database."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from soloist.errors import UserError
from soloist.memory import anchors

HASH = "ab" * 32
KEY = b"0123456789abcdef0123456789abcdef"


def write(path: Path, *records: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return path


def record(seq: int = 3, digest: str = HASH, **more: object) -> dict[str, object]:
    return {"format": anchors.FORMAT, "seq": seq, "hash": digest,
            "time": "2026-12-01T08:00:00Z", **more}


def test_the_signature_is_the_documented_hmac(tmp_path: Path) -> None:
    anchor = anchors.new_anchor(3, HASH, KEY)
    payload = f"soloist-anchor/1\n3\n{HASH}\n{anchor.time}".encode()
    assert anchor.hmac_sha256 == hmac.new(KEY, payload, hashlib.sha256).hexdigest()
    path = tmp_path / "a.jsonl"
    anchors.append(path, anchor)
    anchors.append(path, anchors.new_anchor(4, "cd" * 32, KEY))
    loaded = anchors.load(path, KEY)
    assert loaded.problem == "" and [(a.seq, a.line) for a in loaded.anchors] == [(3, 1), (4, 2)]


def test_the_key_is_the_files_bytes_without_a_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "k1").write_bytes(KEY + b"\n")
    (tmp_path / "k2").write_bytes(KEY)
    assert anchors.read_key(tmp_path / "k1") == anchors.read_key(tmp_path / "k2") == KEY


@pytest.mark.parametrize("bad", [
    record(seq=True), record(seq=-1), record(seq="3"), record(digest="AB" * 32),
    record(digest="ab" * 31), record(seq=0, digest=HASH), record(seq=2, digest=""),
    record(hmac_sha256=5), {**record(), "format": "soloist-anchor/2"}, [1, 2], "not json",
])
def test_a_line_that_is_not_an_anchor_is_a_finding(tmp_path: Path, bad: object) -> None:
    loaded = anchors.load(write(tmp_path / "a.jsonl", record(), bad), None)
    assert "line 2" in loaded.problem and loaded.problem_line == 2


def test_blank_lines_are_ignored_and_the_empty_log_anchors(tmp_path: Path) -> None:
    loaded = anchors.load(write(tmp_path / "a.jsonl", record(), "", record(0, "")), None)
    assert loaded.problem == "" and [a.seq for a in loaded.anchors] == [3, 0]


def test_a_file_of_something_else_is_a_mistake(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not an anchor file"):
        anchors.load(write(tmp_path / "notes", "hello", "world"), None)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="it is not text"):
        anchors.load(tmp_path / "bin", None)
