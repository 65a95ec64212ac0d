"""The live workers and a person's request that one drain (``soloist workers``, ``GET
/api/v1/workers``): each worker's row in the process registry beside the steps it holds.

A drain asks a worker to claim nothing more, finish the steps in its hands and exit (see
control/processes.py); who asked is a ``worker.drain`` event in the log. A part of
:class:`Workspace`, kept in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from soloist.control.processes import alive
from soloist.errors import InputError, NotFound
from soloist.store.base import NewEvent

if TYPE_CHECKING:
    from soloist.store.base import Store

#: A worker's id is short; anything longer is no id (and is not echoed whole).
MAX_ID = 200
#: How many of the workers an ambiguous prefix matches its error names.
SHOWN = 10


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str | None
    pid: int | None
    version: str | None
    started_at: float | None
    heartbeat_at: float
    steps_in_hand: int
    draining: bool


def _info(row: dict[str, Any], held: dict[str, int]) -> WorkerInfo:
    pid = row.get("pid")
    host = row.get("host")
    return WorkerInfo(
        id=str(row["id"]), host=host if isinstance(host, str) else None,
        pid=pid if isinstance(pid, int) else None, version=row.get("version"),
        started_at=row.get("started_at"), heartbeat_at=float(row["heartbeat_at"]),
        steps_in_hand=held.get(str(row["id"]), 0),
        draining=row.get("drain_requested_at") is not None)


def live_workers(store: Store, now: float | None = None) -> list[WorkerInfo]:
    """The worker processes alive now, by id, each with the steps it holds a lease on."""
    rows = [r for r in alive(store, now) if r.get("role") == "worker"]
    with store.read() as tx:
        held = tx.steps.leased_by_owner()
    return [_info(r, held) for r in rows]


def resolve(workers: list[WorkerInfo], wanted: str) -> WorkerInfo:
    """The worker whose id is ``wanted``, or the only one whose id starts with it."""
    if not wanted or len(wanted) > MAX_ID:
        raise InputError(f"a worker id has 1 to {MAX_ID} characters (see soloist workers)")
    exact = [w for w in workers if w.id == wanted]
    matches = exact or [w for w in workers if w.id.startswith(wanted)]
    if not matches:
        raise NotFound(f"no live worker has an id starting with {wanted!r} "
                       "(soloist workers lists them)")
    if len(matches) > 1:
        named = ", ".join(w.id for w in matches[:SHOWN])
        more = f" and {len(matches) - SHOWN} more" if len(matches) > SHOWN else ""
        raise InputError(f"{wanted!r} matches {len(matches)} workers: {named}{more}; give "
                         "more of the id")
    return matches[0]


def drain(store: Store, wanted: str, actor: str) -> WorkerInfo:
    """Ask the live worker ``wanted`` (an id or an unambiguous prefix) to drain."""
    worker = resolve(live_workers(store), wanted)
    now = store.now()
    with store.transaction() as tx:
        if not tx.scheduler.request_drain(worker.id, now):  # it left meanwhile
            raise NotFound(f"worker {worker.id} has stopped (soloist workers lists those "
                           "alive)")
        tx.events.append(NewEvent("worker.drain", {"worker": worker.id, "host": worker.host,
                                                   "pid": worker.pid}, actor=actor, ts=now))
    return replace(worker, draining=True)


class WorkerMethods:
    """``ws.workers()`` and ``ws.drain_worker(id)``."""

    if TYPE_CHECKING:  # given by Workspace
        store: Store
        def actor(self, actor: str | None) -> str: ...

    def workers(self) -> list[WorkerInfo]:
        """The live worker processes: host, pid, version, start, last heartbeat, the steps
        in their hands, and whether they were asked to drain."""
        return live_workers(self.store)

    def drain_worker(self, worker_id: str, actor: str | None = None) -> WorkerInfo:
        """Ask one live worker (its id, or a prefix that names one) to claim nothing more
        and exit once the steps in its hands are finished; recorded with who asked."""
        return drain(self.store, worker_id, self.actor(actor))
