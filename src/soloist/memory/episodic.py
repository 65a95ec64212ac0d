"""The episodic log's integrity: recompute the hash chain and find the first broken link."""

from __future__ import annotations

from dataclasses import dataclass

from soloist.store.base import NewEvent, Store
from soloist.store.repositories import chain_hash
from soloist.store.seam import dumps


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    broken_at: int | None = None
    problem: str = ""


def verify(store: Store, page: int = 5000) -> VerifyReport:
    """Walk the whole log in order; any edited, removed or reordered event breaks it."""
    prev = ""
    expected_seq = 0
    checked = 0
    after = 0
    while True:
        with store.read() as tx:
            rows = tx.events.scan(after, page)
        if not rows:
            break
        for row in rows:
            expected_seq += 1
            if row.seq != expected_seq:
                return VerifyReport(False, checked, expected_seq,
                                    f"event {expected_seq} is missing (next is {row.seq})")
            if row.prev_hash != prev:
                return VerifyReport(False, checked, row.seq,
                                    "its prev_hash does not match the event before it")
            event = NewEvent(row.kind, row.data, row.run_id, row.step_id, row.actor, row.ts)
            if chain_hash(prev, row.seq, event, dumps(row.data)) != row.hash:
                return VerifyReport(False, checked, row.seq,
                                    "its content does not match its hash (edited)")
            prev = row.hash
            checked += 1
        after = rows[-1].seq
    return VerifyReport(True, checked)
