"""The storage contract of wait steps, stopped runs and the workspace's clock.

A ``wait`` step parks its step in ``waiting`` with a row here: the topic it waits for (if
any), the expression that must hold, what that expression may read (``scope``: the run and
its inputs, copied when the wait began) and the deadline on the workspace's clock. The
scheduler resolves a row once (``event`` or ``timeout``) and wakes its step; the step's
next execution reads how it ended.

The workspace's clock is the database's clock plus an offset that only a workspace made
for rehearsals may move (``[workspace] test_clock``): every timer a playbook declares (a
wait's deadline, a cron trigger) is read on it, so a demo can let three days pass without
touching the system clock. Leases, limits and backoff stay on the real clock.

Reached as ``tx.waits`` and ``tx.clock``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: How a wait ended.
EVENT, TIMEOUT = "event", "timeout"


@dataclass(frozen=True, slots=True)
class WaitRow:
    run_id: str
    step_id: str
    topic: str | None  # None: a plain timer
    when: str | None  # an expression over ``event`` and ``scope``
    scope: dict[str, Any]  # what ``when`` reads besides the event: run, inputs
    deadline: float | None  # on the workspace's clock; None: no timeout
    created_at: float
    outcome: str | None = None  # None while waiting, then EVENT or TIMEOUT
    event: Any = None  # the event that ended it: {topic, payload, run_id, bus_id}
    resolved_at: float | None = None


class Waits(Protocol):
    def lock(self) -> None:
        """Serialise the beginning of waits with the routing of events (until commit), so
        an event published meanwhile is seen by one side or the other."""
        ...
    def begin(self, row: WaitRow) -> WaitRow:
        """Record a wait, unless its step already has one; the row that stands."""
        ...
    def get(self, run_id: str, step_id: str) -> WaitRow | None: ...
    def open(self, limit: int = 10_000) -> builtins.list[WaitRow]:
        """Unresolved waits whose step is ``waiting``, oldest first."""
        ...
    def due(self, now: float, limit: int = 500) -> builtins.list[WaitRow]:
        """Unresolved waits of ``waiting`` steps whose deadline is at or before ``now``."""
        ...
    def resolve(self, run_id: str, step_id: str, outcome: str, event: Any,
                now: float) -> bool:
        """End a wait as ``outcome``; false if it had ended already."""
        ...
    def wake(self, run_id: str, step_id: str, now: float) -> bool:
        """A ``waiting`` step to ``ready`` now; false if it is not waiting."""
        ...
    def skip_open(self, run_id: str, now: float) -> builtins.list[tuple[str, str]]:
        """Skip every step of the run that is neither terminal nor dispatching (revoking
        the lease of one a worker executes); the (step, old state) pairs."""
        ...
    def bus_since(self, topics: Sequence[str], since: float, limit: int = 10_000
                  ) -> builtins.list[dict[str, Any]]:
        """Bus messages (``id, topic, payload, run_id``) published at or after ``since``
        on topics matching any of ``topics`` (globs with ``*``), oldest first."""
        ...


class Clock(Protocol):
    def offset(self) -> float:
        """Seconds the workspace's clock is ahead of the database's (0 unless moved)."""
        ...
    def set_offset(self, seconds: float) -> None: ...
