"""Anchors: the chain head written down outside the database.

The hash chain is unkeyed, so whoever can write the database can rewrite the log whole
and hash it again. An anchor is a line the operator keeps elsewhere (another disk, another
machine, a printout) naming one head of the chain: ``(seq, hash, time)``. The log extends
an anchor when its event ``seq`` still has that hash; since every hash covers the one
before it, that proves the first ``seq`` events are exactly what they were when anchored.

An anchor file is JSON Lines, one anchor a line, appended to and never rewritten::

    {"format": "soloist-anchor/1", "seq": 42, "hash": "ab12...", "time": "2026-12-01T08:40:00Z"}

With a key file, each line also carries ``"hmac_sha256"``: the hex HMAC-SHA256, under the
key, of ``soloist-anchor/1\\n{seq}\\n{hash}\\n{time}``. The key is the file's bytes without a
trailing newline (at least 16 bytes: ``head -c 32 /dev/urandom > KEY``); it must live
outside the workspace's store, so that whoever rewrites the log cannot sign a new anchor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from soloist.config import Settings
from soloist.errors import NotFound, UserError
from soloist.store import sqlite_path

FORMAT = "soloist-anchor/1"
MIN_KEY_BYTES = 16
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    time: str
    hmac_sha256: str | None = None
    line: int = 0  # where it is in its file, for the messages

    def payload(self) -> bytes:
        return f"{FORMAT}\n{self.seq}\n{self.hash}\n{self.time}".encode()

    def to_line(self) -> str:
        record: dict[str, object] = {"format": FORMAT, "seq": self.seq, "hash": self.hash,
                                     "time": self.time}
        if self.hmac_sha256 is not None:
            record["hmac_sha256"] = self.hmac_sha256
        return json.dumps(record, separators=(", ", ": ")) + "\n"

    def where(self, path: Path) -> str:
        return f"the anchor at line {self.line} of {path} (made {self.time})"


@dataclass(frozen=True)
class AnchorFile:
    """What an anchor file holds: the anchors, or the first line that is not one."""

    path: Path
    anchors: list[Anchor]
    problem: str = ""  # a line that fails to parse or to verify: the file was tampered with
    problem_line: int = 0


def sign(key: bytes, anchor: Anchor) -> Anchor:
    digest = hmac.new(key, anchor.payload(), hashlib.sha256).hexdigest()
    return Anchor(anchor.seq, anchor.hash, anchor.time, digest, anchor.line)


def new_anchor(seq: int, digest: str, key: bytes | None) -> Anchor:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    anchor = Anchor(seq, digest, now)
    return sign(key, anchor) if key is not None else anchor


def read_key(path: Path) -> bytes:
    try:
        key = path.expanduser().read_bytes().rstrip(b"\r\n")
    except FileNotFoundError:
        raise NotFound(f"no key file at {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read the key file {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise UserError(f"the key in {path} is too short ({len(key)} bytes); use at least "
                        f"{MIN_KEY_BYTES}, e.g. `head -c 32 /dev/urandom > {path}`")
    return key


def _parse(text: str, number: int) -> Anchor | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    seq, digest, when = record.get("seq"), record.get("hash"), record.get("time")
    mac = record.get("hmac_sha256")
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
            or not isinstance(digest, str) or not isinstance(when, str)
            or not (mac is None or isinstance(mac, str))):
        return None
    # Seq 0 is the empty log, whose head hash is empty; any other hash is a SHA-256.
    if (seq == 0) != (digest == "") or (seq and not _HASH.match(digest)):
        return None
    return Anchor(seq, digest, when, mac, number)


def load(path: Path, key: bytes | None) -> AnchorFile:
    """Read and, with a key, authenticate an anchor file.

    A file that cannot be read, or holds no anchor at all, is the operator's mistake (an
    error); a bad line among good ones, or a wrong signature, is a finding (``problem``).
    """
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no anchor file at {path}; write one with "
                       f"`soloist audit anchor --to {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not text"
        raise UserError(f"cannot read the anchor file {path}: {reason}") from None
    anchors: list[Anchor] = []
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        anchor = _parse(line, number)
        if anchor is None:
            bad.append(number)
        else:
            anchors.append(anchor)
    if bad and not anchors:
        raise UserError(f"{path} is not an anchor file (line {bad[0]} is not an anchor); "
                        "`soloist audit anchor --to FILE` writes one")
    if bad:
        return AnchorFile(path, anchors, f"line {bad[0]} of {path} is not an anchor: the "
                          "anchor file was edited", bad[0])
    signed = [a for a in anchors if a.hmac_sha256 is not None]
    if key is None:
        if signed:
            raise UserError(f"the anchors in {path} are signed; pass --key FILE with the "
                            "key they were signed with")
        return AnchorFile(path, anchors)
    for anchor in anchors:
        if anchor.hmac_sha256 is None:
            return AnchorFile(path, anchors, f"{anchor.where(path)} is not signed, but "
                              "--key was given: an unsigned line was added", anchor.line)
        expected = sign(key, anchor).hmac_sha256 or ""
        if not hmac.compare_digest(expected, anchor.hmac_sha256):
            return AnchorFile(path, anchors, f"{anchor.where(path)} has a wrong signature: "
                              "the line was edited, or the key is not the one it was "
                              "signed with", anchor.line)
    return AnchorFile(path, anchors)


def append(path: Path, anchor: Anchor) -> None:
    """Add one line; an existing file is only ever appended to."""
    target = path.expanduser()
    if not target.parent.is_dir():
        raise NotFound(f"no folder {target.parent} for the anchor file")
    if target.is_dir():
        raise UserError(f"{path} is a folder; give the anchor file's path")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write the anchor file {path}: {exc.strerror}") from None
    try:
        os.write(fd, anchor.to_line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_files(settings: Settings) -> list[Path]:
    url = settings.database_url
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return []
    db = Path(sqlite_path(url))
    return [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def same_file(one: Path, other: Path) -> bool:
    resolved = one.expanduser().resolve()
    theirs = other.expanduser().resolve()
    return resolved == theirs or _same_inode(resolved, [theirs])


def refuse_inside_store(path: Path, settings: Settings, what: str) -> None:
    """An anchor or its key kept where the log is kept would be rewritten with it."""
    resolved = path.expanduser().resolve()
    state = settings.state_dir.resolve()
    if resolved == state or resolved.is_relative_to(state):
        raise UserError(f"{path} is inside the workspace's {state}, which whoever rewrites "
                        f"the log can rewrite too; put the {what} outside the workspace")
    files = [f.expanduser().resolve() for f in
             (*_store_files(settings), settings.secret_key_file)]
    if resolved in files or _same_inode(resolved, files):
        raise UserError(f"{path} is one of the workspace's own files (its store or its "
                        f"secret key); put the {what} outside the workspace")


def _same_inode(path: Path, files: Iterable[Path]) -> bool:
    """A hard link is another name for the same file: resolving names does not see it."""
    try:
        mine = path.stat()
    except OSError:
        return False
    for other in files:
        try:
            theirs = other.stat()
        except OSError:
            continue
        if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
            return True
    return False
