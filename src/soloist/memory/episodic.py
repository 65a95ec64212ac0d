"""The episodic log's integrity: recompute the hash chain and find the first broken link.

Three things are compared, each catching what the others cannot:

* the events with each other (an edited, removed or reordered event breaks the chain);
* the last event with the stored chain head, which every append moves in the same
  transaction (a log that ends before the head has lost its tail, or all of it);
* the events with anchors kept outside the database (:mod:`soloist.memory.anchors`): a
  log rewritten whole and hashed again is consistent in itself, but no longer has an
  anchored hash at its anchored place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from soloist.config import Settings
from soloist.errors import InvalidState, UserError
from soloist.memory import anchors
from soloist.memory.anchors import Anchor, AnchorFile
from soloist.store.base import ChainHead, EventRow, NewEvent, Store
from soloist.store.repositories import chain_hash
from soloist.store.seam import dumps

Cause = Literal["", "chain", "tail", "head", "anchor"]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    broken_at: int | None = None
    problem: str = ""
    head: ChainHead | None = None  # the stored chain head, as read
    # chain: an event does not follow from the one before; tail: events are missing at the
    # end; head: the head record itself is gone or disagrees; anchor: an anchor no longer
    # matches (or the anchor file is not what was written).
    cause: Cause = ""
    anchors: int = 0  # anchors checked
    anchor_seq: int | None = None  # the newest anchored event, when anchors were checked


def short(digest: str) -> str:
    return digest[:12] + "..." if digest else "(empty)"


class _Walk:
    """One pass over the log in order, remembering where it got to."""

    def __init__(self, anchors: AnchorFile | None) -> None:
        self.anchors = anchors
        self.by_seq: dict[int, list[Anchor]] = {}
        for anchor in anchors.anchors if anchors else []:
            self.by_seq.setdefault(anchor.seq, []).append(anchor)
        self.seq = 0
        self.prev = ""
        self.checked = 0
        self.head: ChainHead | None = None

    def broken(self, at: int | None, problem: str, cause: Cause) -> VerifyReport:
        return VerifyReport(False, self.checked, at, problem, self.head, cause)

    def through(self, store: Store, page: int, upto: int | None = None) -> VerifyReport | None:
        """Check every event after the last one checked (up to ``upto``); the first
        problem, or None."""
        while upto is None or self.seq < upto:
            with store.read() as tx:
                rows = tx.events.scan(self.seq, page)
            if upto is not None:
                rows = [row for row in rows if row.seq <= upto]
            if not rows:
                return None
            for row in rows:
                problem = self.check(row)
                if problem is not None:
                    return problem
        return None

    def check(self, row: EventRow) -> VerifyReport | None:
        expected = self.seq + 1
        if row.seq != expected:
            return self.broken(expected, f"event {expected} is missing (next is {row.seq})",
                               "chain")
        if row.prev_hash != self.prev:
            return self.broken(row.seq, "its prev_hash does not match the event before it",
                               "chain")
        event = NewEvent(row.kind, row.data, row.run_id, row.step_id, row.actor, row.ts)
        if chain_hash(self.prev, row.seq, event, dumps(row.data)) != row.hash:
            return self.broken(row.seq, "its content does not match its hash (edited)",
                               "chain")
        for anchor in self.by_seq.get(row.seq, []):
            if anchor.hash != row.hash:
                assert self.anchors is not None
                return self.broken(row.seq, (
                    f"{anchor.where(self.anchors.path)} names event {row.seq} with hash "
                    f"{short(anchor.hash)}, but the log's event {row.seq} has hash "
                    f"{short(row.hash)}: the log was rewritten at or before event {row.seq}"),
                    "anchor")
        self.seq, self.prev = row.seq, row.hash
        self.checked += 1
        return None

    def ends(self) -> str:
        return f"the log ends at event {self.seq}" if self.seq else "the log is empty"


def verify(store: Store, anchors: AnchorFile | None = None, page: int = 5000) -> VerifyReport:
    """Walk the whole log in order; compare its end with the head, and it with the anchors."""
    walk = _Walk(anchors)
    if anchors is not None and anchors.problem:
        return walk.broken(None, anchors.problem, "anchor")
    # The walk goes as far as the head stood when it began: writers that append faster than
    # it reads cannot keep it chasing the end for ever.
    with store.read() as tx:
        start = tx.events.head()
    found = walk.through(store, page, upto=None if start is None else start.seq)
    if found is not None:
        with store.read() as tx:
            return replace(found, head=tx.events.head())
    # The head is read after the walk: every event the walk saw was committed together with
    # a head at least as far on, so a head behind the log was moved back by hand; a head
    # ahead of it is either events committed since (checked next) or a lost tail. In the
    # same snapshot, an event after the head is one no commit put there with its head.
    with store.read() as tx:
        walk.head = head = tx.events.head()
        beyond = [] if head is None else tx.events.scan(head.seq, 1)
    if head is None:
        return walk.broken(None, f"the chain head record is gone, so the log's end cannot "
                           f"be checked ({walk.ends()})", "head")
    if head.seq < walk.seq:
        return walk.broken(head.seq + 1, (
            f"the log goes on past its head: the head names event {head.seq} (hash "
            f"{short(head.hash)}) but {walk.ends()}"), "head")
    if beyond:
        return walk.broken(head.seq + 1, (
            f"the log goes on past its head: the head names event {head.seq} (hash "
            f"{short(head.hash)}) but the log holds event {beyond[0].seq} after it"), "head")
    found = walk.through(store, page, upto=head.seq)
    if found is not None:
        return found
    if walk.seq < head.seq:
        missing = (f"event {head.seq} is" if walk.seq + 1 == head.seq
                   else f"events {walk.seq + 1} to {head.seq} are")
        return walk.broken(walk.seq + 1, (
            f"the head names event {head.seq} (hash {short(head.hash)}) but {walk.ends()}: "
            f"{missing} missing"), "tail")
    if walk.prev != head.hash:
        return walk.broken(head.seq, (
            f"the head names event {head.seq} with hash {short(head.hash)}, but the log's "
            f"event {head.seq} has hash {short(walk.prev)}"), "head")
    if anchors is not None:
        for anchor in anchors.anchors:
            if anchor.seq > head.seq:
                return walk.broken(walk.seq + 1, (
                    f"{anchor.where(anchors.path)} names event {anchor.seq} (hash "
                    f"{short(anchor.hash)}), but {walk.ends()}: the log was cut short and "
                    "its head moved back"), "anchor")
    anchored = max((a.seq for a in anchors.anchors), default=None) if anchors else None
    return VerifyReport(True, walk.checked, head=head,
                        anchors=len(anchors.anchors) if anchors else 0, anchor_seq=anchored)


def verify_against(store: Store, settings: Settings, anchor_file: Path | None = None,
                   key_file: Path | None = None) -> VerifyReport:
    """:func:`verify`, with the anchors of ``anchor_file`` (signed ones need ``key_file``)."""
    if anchor_file is None:
        if key_file is not None:
            raise UserError("--key checks the signatures of an anchor file; give the file "
                            "with --anchor FILE")
        return verify(store)
    key = _key(settings, key_file)
    found = anchors.load(anchor_file, key)
    if not found.anchors:
        raise UserError(f"{anchor_file} holds no anchors yet; write one with "
                        f"`soloist audit anchor --to {anchor_file}`")
    return verify(store, found)


def anchor_head(store: Store, settings: Settings, to: Path,
                key_file: Path | None = None) -> Anchor:
    """Append the head of an intact log to ``to``, a file outside the store.

    A log that is broken, or that no longer extends the anchors already in ``to``, is not
    anchored: that would vouch for what was tampered with.
    """
    anchors.refuse_inside_store(to, settings, "anchor file")
    if key_file is not None and anchors.same_file(to, key_file):
        raise UserError(f"{to} is the key file too; the anchors and their key are two files")
    key = _key(settings, key_file)
    existing = anchors.load(to, key) if to.expanduser().exists() else None
    report = verify(store, existing)
    if not report.ok or report.head is None:
        if report.broken_at is None:  # the anchor file itself, or the head record
            raise InvalidState(f"{report.problem}; nothing was anchored")
        raise InvalidState(f"the log is broken at event {report.broken_at}: "
                           f"{report.problem}; nothing was anchored")
    anchor = anchors.new_anchor(report.head.seq, report.head.hash, key)
    anchors.append(to, anchor)
    return anchor


def _key(settings: Settings, key_file: Path | None) -> bytes | None:
    if key_file is None:
        return None
    anchors.refuse_inside_store(key_file, settings, "key")
    return anchors.read_key(key_file)
