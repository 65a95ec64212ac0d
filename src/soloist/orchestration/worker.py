"""The worker loop: claim with a lease, execute in threads, persist in batches.

One loop thread owns the store's write path. Each turn of the loop is one transaction
that records everything the executor threads finished since the last turn, renews
leases when due, and claims as many ready steps as there are free slots. Executor threads
never write; they hand results back through a queue, which is also where the store's
wake-ups arrive, so an idle worker sleeps until there is something to do.

The stages a step goes through live in their own modules: leases (heartbeats, reaping,
poison steps, release on stop), dispatch of intents, compensation, and the recording of
outcomes; this module only decides what to do each turn.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from soloist.control.playbooks import Playbook, StepKind
from soloist.control.processes import Presence
from soloist.control.registry import Registry
from soloist.control.retry import decide
from soloist.errors import (
    InvalidState,
    SoloistError,
    StoreError,
    StoreUnavailable,
    classify,
    describe,
)
from soloist.execution.steps import Outcome, RunInfo, Status, StepJob, StepRunner
from soloist.orchestration import compensation
from soloist.orchestration.compensation import Compensator
from soloist.orchestration.dispatch import Dispatched, Dispatcher
from soloist.orchestration.leases import Leases, placeholder_job
from soloist.orchestration.lifecycle import Resume, StepState, TaskKind, log_moves
from soloist.orchestration.outcomes import (
    apply_dispatched,
    apply_finishes,
    apply_outcome,
    is_plain_finish,
)
from soloist.store.base import NewEvent, RunRow, StepRow, Store, Transaction
from soloist.store.outage import Outage

S = StepState
#: What an executor thread hands back to the loop.
Finished = Outcome | Dispatched
_WAKE = object()
_log = logging.getLogger(__name__)
#: Consecutive turns failed by a store error other than an outage before the worker stops.
MAX_STORE_FAILURES = 20


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


@dataclass
class WorkerOptions:
    concurrency: int = 8
    lease_seconds: float = 30.0
    poll_seconds: float = 0.25  # only where other processes cannot wake us (SQLite)
    grace_seconds: float = 30.0  # on stop: how long to let steps in hand finish
    queue_limits: dict[str, int] = field(default_factory=dict)


@dataclass
class _InFlight:
    row: StepRow
    deadline: float | None


class _Threads:
    """The executor threads: daemon threads, one more whenever none is idle.

    A step whose call never returns keeps its thread for ever (Python cannot end a thread);
    its timeout gives the lease back and the worker claims the next step, which must not
    queue behind the hung one, as it would in a fixed-size pool. Daemon threads, so that a
    hung one does not keep the process from exiting once the worker has stopped.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0
        self._closed = False

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                self._started += 1
                threading.Thread(target=self._serve, name=f"soloist_{self._started}",
                                 daemon=True).start()
        self._jobs.put(work)

    def _serve(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None or self._closed:  # closed: what is still queued is given back
                return
            item()
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """End the idle threads and drop what has not started; wait for nothing."""
        with self._lock:
            self._closed = True
            started = self._started
        for _ in range(started):
            self._jobs.put(None)


class Worker:
    def __init__(self, store: Store, registry: Registry, runner: StepRunner,
                 options: WorkerOptions | None = None, *, name: str | None = None) -> None:
        self.store = store
        self.registry = registry
        self.runner = runner
        self.options = options or WorkerOptions()
        self.id = name or worker_id()
        self.leases = Leases(store, registry, self.id, self.options.lease_seconds)
        self.dispatcher = Dispatcher(store, runner)
        self.compensator = Compensator(store, runner)
        self.stop_event = threading.Event()
        self.inbox: queue.SimpleQueue[Finished | object] = queue.SimpleQueue()
        self.inflight: dict[int, _InFlight] = {}
        self.abandoned: set[tuple[int, int]] = set()
        self.completed = 0
        self.refused = 0
        self._limits_at = 0.0
        self._playbook_limits: dict[str, int] = {}
        self._carry: list[Finished] = []  # results of a turn the store refused, to write again
        #: Called every few seconds from the loop (e.g. to reload what must be redacted).
        self.refresh_hooks: list[Callable[[], None]] = []

    # -- lifecycle of the loop -------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()
        self.inbox.put(_WAKE)

    def _wake(self) -> None:
        self.inbox.put(_WAKE)

    def run(self, until_idle: bool = False) -> None:
        """Work until :meth:`stop` (or, with ``until_idle``, until nothing is ready)."""
        opts = self.options
        self.store.add_listener(self._wake)
        presence = Presence(self.store, self.id, "worker", opts.lease_seconds)
        presence.beat()  # alive from now: a snapshot restore refuses while it is
        pool = _Threads()
        next_heartbeat = 0.0
        next_reap = 0.0
        stop_deadline: float | None = None
        failures = 0
        outage = Outage(_log, f"worker {self.id}")
        draining = False
        try:
            while True:
                finished = self._drain()
                stopping = self.stop_event.is_set()
                if stopping and stop_deadline is None:
                    stop_deadline = self.store.now() + opts.grace_seconds
                now = self.store.now()
                presence.beat(now)
                if presence.draining and not draining:  # soloist workers drain
                    draining = True
                    _log.warning("worker %s: asked to drain: claiming nothing more", self.id)
                if now >= next_reap and not stopping:
                    self.reap_expired(now)
                    next_reap = now + self.leases.reap_every
                finished.extend(self._timeouts(now))
                free = opts.concurrency - len(self.inflight) + sum(
                    1 for f in finished if f.job.row.id in self.inflight)
                want = 0 if stopping or draining else free
                heartbeat = now >= next_heartbeat and bool(self.inflight)
                claimed: list[StepJob] = []
                to_dispatch: list[StepJob] = []
                if finished or want or heartbeat:
                    try:
                        claimed, to_dispatch = self._turn(finished, want, heartbeat, now)
                    except StoreError as exc:
                        # Nothing of the turn was written: keep the results and try again.
                        # An outage (a restart, a partition) is waited out however long it
                        # lasts; another error that keeps coming back is a bug.
                        self._carry = finished
                        if not isinstance(exc, StoreUnavailable):
                            failures += 1
                            if failures > MAX_STORE_FAILURES:
                                raise
                        self.stop_event.wait(outage.failed(exc))
                        continue
                    failures = 0
                    outage.ok()
                    if heartbeat:
                        next_heartbeat = now + self.leases.heartbeat_every
                for job in to_dispatch:
                    pool.submit(functools.partial(self._guard, self.dispatcher.dispatch, job))
                for job in claimed:
                    step = (job.playbook.step(job.row.step_id)
                            if job.row.kind == TaskKind.STEP else None)
                    timeout = step.timeout if step is not None else None
                    self.inflight[job.row.id] = _InFlight(
                        job.row, None if timeout is None else now + timeout)
                    pool.submit(functools.partial(self._guard, self._job, job))
                if stopping and (not self.inflight or self.store.now() > (stop_deadline or 0)):
                    break
                if until_idle and not self.inflight and not claimed and not finished \
                        and self._next_available(now) is None:
                    break
                if draining and not self.inflight:
                    _log.warning("worker %s drained: every step in hand finished", self.id)
                    break
                if not claimed and not finished:
                    self._sleep(now)
        finally:
            self.store.remove_listener(self._wake)
            self.leases.release(f.row for f in self.inflight.values())
            self.inflight.clear()
            pool.shutdown()
            presence.leave()

    def _sleep(self, now: float) -> None:
        timeout = self.options.poll_seconds if self.store.polls else 5.0
        if not self.store.polls:
            # No wake-up comes when a retry's backoff ends: wake for it ourselves.
            upcoming = self._next_available(None)
            if upcoming is not None:
                timeout = max(0.02, min(timeout, upcoming - now))  # never spin
        if self.inflight:
            deadlines = [f.deadline for f in self.inflight.values() if f.deadline]
            if deadlines:
                timeout = max(0.0, min(timeout, min(deadlines) - now))
        try:
            item = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        if item is not _WAKE:
            self.inbox.put(item)

    def _next_available(self, unknown: float | None) -> float | None:
        """When the next step becomes ready (None: nothing is scheduled); ``unknown``
        when the store cannot say (it is down: the next turn waits for it)."""
        try:
            with self.store.read() as tx:
                return tx.steps.next_available()
        except StoreUnavailable:
            return unknown

    def _drain(self) -> list[Finished]:
        items: list[Finished] = self._carry
        self._carry = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return items
            if not isinstance(item, (Outcome, Dispatched)):  # a wake-up
                continue
            key = (item.job.row.id, item.job.row.lease_token)
            if key in self.abandoned:
                self.abandoned.discard(key)
                continue
            items.append(item)

    def _timeouts(self, now: float) -> list[Outcome]:
        late: list[Outcome] = []
        for pk, flight in list(self.inflight.items()):
            if flight.deadline is not None and now > flight.deadline:
                self.abandoned.add((pk, flight.row.lease_token))
                job = placeholder_job(self.registry, flight.row)
                policy = job.playbook.step(flight.row.step_id).retry
                decision = decide(policy, "transient", flight.row.attempt)
                status: Status = "retry" if decision.action == "retry" else "failed"
                late.append(Outcome(job, status, error="the step timed out", kind="transient",
                                    delay=decision.delay))
        return late

    # -- one transaction per turn ---------------------------------------------------
    def _turn(self, finished: list[Finished], want: int, heartbeat: bool,
              now: float) -> tuple[list[StepJob], list[StepJob]]:
        to_dispatch: list[StepJob] = []
        plain = [i for i in finished if isinstance(i, Outcome) and is_plain_finish(i)]
        others = [i for i in finished if not (isinstance(i, Outcome) and is_plain_finish(i))]
        with self.store.transaction() as tx:
            if plain:
                for finish, accepted in zip(plain, apply_finishes(tx, plain, self.id, now),
                                            strict=True):
                    self.inflight.pop(finish.job.row.id, None)
                    self._count(tx, finish, accepted, now)
            for item in others:
                pk = item.job.row.id
                if isinstance(item, Dispatched):
                    accepted = apply_dispatched(tx, item, self.id, now)
                    self.inflight.pop(pk, None)
                else:
                    accepted = apply_outcome(tx, item, self.id, now)
                    if accepted and item.status == "dispatch":
                        to_dispatch.append(item.job)
                    else:
                        self.inflight.pop(pk, None)
                self._count(tx, item, accepted, now)
            if heartbeat:
                self.leases.heartbeat(tx, list(self.inflight), now)
            claimed = self._claim(tx, want, now) if want > 0 else []
        return claimed, to_dispatch

    def _count(self, tx: Transaction, item: Outcome | Dispatched, accepted: bool,
               now: float) -> None:
        if accepted:
            self.completed += 1
            return
        self.refused += 1
        tx.events.append(NewEvent("lease.refused", {
            "worker": self.id, "token": item.job.row.lease_token},
            run_id=item.job.row.run_id, step_id=item.job.row.step_id, actor=self.id, ts=now))

    def _claim(self, tx: Transaction, want: int, now: float) -> list[StepJob]:
        lease = self.options.lease_seconds
        limits = self._limits(now)
        if not limits[0] and not limits[1]:
            rows = tx.steps.claim(self.id, now, lease, want)
        else:
            rows = self._claim_limited(tx, want, now, limits)
        if not rows:
            return []
        run_ids = list({r.run_id for r in rows})
        outputs = tx.steps.outputs(run_ids)
        run_rows = tx.runs.get_many(run_ids)
        offset = tx.clock.offset()
        jobs: list[StepJob] = []
        for row in rows:
            run = run_rows.get(row.run_id)
            refused: str | None = None
            try:
                playbook = self.registry.playbook(
                    row.playbook, row.playbook_version,
                    self.registry.pinned_digest(run.pins if run else None))
            except InvalidState as exc:  # what the run pinned is gone: fail it, run nothing
                refused = exc.message
                playbook = self.registry.playbook(row.playbook, row.playbook_version)
            target = S.PERSISTING if row.resume == Resume.DISPATCH else S.EXECUTING
            log_moves(tx, row, S.READY, S.CLAIMED, target, ts=now, actor=self.id,
                      data={"lease_token": row.lease_token})
            jobs.append(StepJob(row, playbook, run.inputs if run else {}, outputs[row.run_id],
                                _run_info(tx, row, run, refused, playbook, offset)))
        return jobs

    def _limits(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        if now - self._limits_at > 5.0:
            self._playbook_limits = {p.name: p.concurrency
                                     for p in self.registry.latest_playbooks() if p.concurrency}
            self._limits_at = now
            for hook in self.refresh_hooks:
                hook()
        return self._playbook_limits, self.options.queue_limits

    def _claim_limited(self, tx: Transaction, want: int, now: float,
                       limits: tuple[dict[str, int], dict[str, int]]) -> list[StepRow]:
        tx.steps.lock_for_limits()
        by_playbook, by_queue = tx.steps.leased_counts()
        rows: list[StepRow] = []
        for _ in range(want):
            full_pb = [p for p, n in limits[0].items() if by_playbook.get(p, 0) >= n]
            full_q = [q for q, n in limits[1].items() if by_queue.get(q, 0) >= n]
            got = tx.steps.claim(self.id, now, self.options.lease_seconds, 1, full_pb, full_q)
            if not got:
                break
            row = got[0]
            by_playbook[row.playbook] = by_playbook.get(row.playbook, 0) + 1
            by_queue[row.queue] = by_queue.get(row.queue, 0) + 1
            rows.append(row)
        return rows

    # -- executor threads ------------------------------------------------------------
    def _guard(self, fn: Callable[[StepJob], Finished], job: StepJob) -> None:
        try:
            self.inbox.put(fn(job))
        except BaseException as exc:  # a bug must not lose the step: report it as failed
            # Only what Soloist did not raise on purpose is a bug ("internal error").
            error = describe(exc) if isinstance(exc, SoloistError) else \
                f"internal error: {describe(exc)}"
            self.inbox.put(Outcome(job, "failed", error=error, kind=classify(exc)))

    def _job(self, job: StepJob) -> Outcome | Dispatched:
        if job.run.refused:
            return Outcome(job, "failed", error=job.run.refused)
        if job.row.kind == TaskKind.COMPENSATION:
            return self.compensator.run(job)
        if job.row.resume == Resume.DISPATCH:
            return self.dispatcher.dispatch(job)
        return self.runner.execute(job)

    # -- leases ------------------------------------------------------------------------
    def reap_expired(self, now: float) -> int:
        """Put steps whose lease expired back to ready, or fail poison steps (see leases)."""
        return self.leases.reap_expired(now)


def _run_info(tx: Transaction, row: StepRow, run: RunRow | None,
              refused: str | None, playbook: Playbook | None = None,
              clock_offset: float = 0.0) -> RunInfo:
    """What a claimed step knows of its run; a compensation and a resumed dispatch also
    see the intents (and the output) of the step concerned, a wait step its wait."""
    pins = run.pins if run else None
    if row.kind != TaskKind.COMPENSATION and row.resume != Resume.DISPATCH:
        step = playbook.steps_by_id.get(row.step_id) if playbook is not None else None
        wait = tx.waits.get(row.run_id, row.step_id) if step is not None and \
            step.kind == StepKind.WAIT else None
        return RunInfo(row.run_id, row.playbook, row.playbook_version, row.attempt, pins,
                       refused, wait=wait, clock_offset=clock_offset)
    original, attempts = row.step_id, None
    if row.kind == TaskKind.COMPENSATION:
        original = compensation.original_of(row.step_id)
        attempts = row.attempt - compensation.attempt_base(tx.approvals.for_run(row.run_id),
                                                           row.step_id)
    origin = tx.steps.get(row.run_id, original)
    return RunInfo(row.run_id, row.playbook, row.playbook_version, row.attempt, pins,
                   refused, tuple(tx.intents.for_step(row.run_id, original)),
                   origin.output if origin else None, attempts)
