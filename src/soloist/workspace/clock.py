"""The workspace's clock: the database's clock, moved forward only in a rehearsal.

Every timer a playbook declares (a wait's deadline, a cron trigger) is read on it. A
workspace made for rehearsals and demos (``[workspace] test_clock = true``) may move it
forward, so three days of follow-ups pass in a second without touching the system clock;
leases, limits and backoff stay on the real clock. Each move is in the episodic log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from soloist.errors import InputError, InvalidState
from soloist.store.base import NewEvent, Store

#: How far a rehearsal's clock may run ahead: ten years.
MAX_OFFSET = 10 * 365 * 86400.0


@dataclass(frozen=True)
class ClockReading:
    now: float  # the workspace's time, epoch seconds
    offset: float  # how far ahead of the real clock it is
    adjustable: bool  # whether this workspace may move it


class WorkspaceClock:
    def __init__(self, store: Store, adjustable: bool) -> None:
        self.store = store
        self.adjustable = adjustable

    def read(self) -> ClockReading:
        with self.store.read() as tx:
            offset = tx.clock.offset()
        return ClockReading(self.store.now() + offset, offset, self.adjustable)

    def advance(self, seconds: float, actor: str) -> ClockReading:
        """Move the clock forward; the waits and cron triggers now due fire on the
        scheduler's next tick."""
        if not self.adjustable:
            raise InvalidState("this workspace's clock is the real one; only a workspace "
                               "for rehearsals may move it: set test_clock = true under "
                               "[workspace] in soloist.toml")
        if not (math.isfinite(seconds) and seconds > 0):
            raise InputError("the clock only moves forward: give a duration above 0, "
                             "like 3d or 90m", field="seconds")
        with self.store.transaction() as tx:
            offset = tx.clock.offset() + seconds
            if offset > MAX_OFFSET:  # past it, dates no longer read (nor cron)
                raise InputError(f"a rehearsal's clock runs at most {MAX_OFFSET // 86400:.0f} "
                                 "days ahead of the real one; give a shorter duration",
                                 field="seconds")
            tx.clock.set_offset(offset)
            tx.events.append(NewEvent("clock.advanced", {
                "by": seconds, "offset": offset},
                actor=actor, ts=tx.now()))
        return ClockReading(self.store.now() + offset, offset, True)
