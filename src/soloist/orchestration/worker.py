"""The worker loop: claim with a lease, execute in threads, persist in batches.

One loop thread owns the store's write path. Each turn of the loop is one transaction
that records everything the executor threads finished since the last turn, renews
leases when due, and claims as many ready steps as there are free slots. Executor threads
never write; they hand results back through a queue, which is also where the store's
wake-ups arrive, so an idle worker sleeps until there is something to do.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from soloist.control.playbooks import RetryPolicy
from soloist.control.processes import Presence
from soloist.control.registry import Registry
from soloist.control.retry import decide
from soloist.errors import InvalidState, LeaseLost, SoloistError, StoreError, classify, describe
from soloist.execution.context import ToolCall
from soloist.execution.steps import Outcome, Status, StepJob, StepRunner
from soloist.orchestration import compensation
from soloist.orchestration.lifecycle import StepState
from soloist.orchestration.outcomes import (
    Dispatched,
    apply_dispatched,
    apply_finishes,
    apply_outcome,
    is_plain_finish,
    log_moves,
)
from soloist.store.base import IntentRow, NewEvent, StepRow, StepUpdate, Store, Transaction

S = StepState
_WAKE = object()
_log = logging.getLogger(__name__)
#: Consecutive failed turns (about a minute of backoff) before the worker gives up.
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


class Worker:
    def __init__(self, store: Store, registry: Registry, runner: StepRunner,
                 options: WorkerOptions | None = None, *, name: str | None = None) -> None:
        self.store = store
        self.registry = registry
        self.runner = runner
        self.options = options or WorkerOptions()
        self.id = name or worker_id()
        self.stop_event = threading.Event()
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.inflight: dict[int, _InFlight] = {}
        self.abandoned: set[tuple[int, int]] = set()
        self.completed = 0
        self.refused = 0
        self._limits_at = 0.0
        self._playbook_limits: dict[str, int] = {}
        self._carry: list[Any] = []  # results of a turn the store refused, to write again
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
        pool = ThreadPoolExecutor(max_workers=opts.concurrency, thread_name_prefix="soloist")
        next_heartbeat = 0.0
        next_reap = 0.0
        stop_deadline: float | None = None
        failures = 0
        try:
            while True:
                finished = self._drain()
                stopping = self.stop_event.is_set()
                if stopping and stop_deadline is None:
                    stop_deadline = time.time() + opts.grace_seconds
                now = time.time()
                presence.beat(now)
                if now >= next_reap and not stopping:
                    self.reap_expired(now)
                    next_reap = now + max(0.5, opts.lease_seconds / 2)
                finished.extend(self._timeouts(now))
                free = opts.concurrency - len(self.inflight) + sum(
                    1 for f in finished if f.job.row.id in self.inflight)
                want = 0 if stopping else free
                heartbeat = now >= next_heartbeat and bool(self.inflight)
                claimed: list[StepJob] = []
                to_dispatch: list[StepJob] = []
                if finished or want or heartbeat:
                    try:
                        claimed, to_dispatch = self._turn(finished, want, heartbeat, now)
                    except StoreError as exc:
                        # Nothing of the turn was written: keep the results and try again.
                        failures += 1
                        if failures > MAX_STORE_FAILURES:
                            raise
                        self._carry = finished
                        _log.warning("worker %s: store error, retrying: %s", self.id, exc)
                        self.stop_event.wait(min(5.0, 0.1 * 2 ** failures))
                        continue
                    failures = 0
                    if heartbeat:
                        next_heartbeat = now + opts.lease_seconds / 3
                for job in to_dispatch:
                    pool.submit(self._guard, self._dispatch, job)
                for job in claimed:
                    step = job.playbook.step(job.row.step_id) if job.row.kind == "step" else None
                    timeout = step.timeout if step is not None else None
                    self.inflight[job.row.id] = _InFlight(
                        job.row, None if timeout is None else time.time() + timeout)
                    pool.submit(self._guard, self._job, job)
                if stopping and (not self.inflight or time.time() > (stop_deadline or 0)):
                    break
                if until_idle and not self.inflight and not claimed and not finished:
                    with self.store.read() as tx:
                        upcoming = tx.steps.next_available()
                    if upcoming is None:
                        break
                if not claimed and not finished:
                    self._sleep(now)
        finally:
            self.store.remove_listener(self._wake)
            self._release_in_hand()
            pool.shutdown(wait=False, cancel_futures=True)
            presence.leave()

    def _sleep(self, now: float) -> None:
        timeout = self.options.poll_seconds if self.store.polls else 5.0
        if not self.store.polls:
            # No wake-up comes when a retry's backoff ends: wake for it ourselves.
            with self.store.read() as tx:
                upcoming = tx.steps.next_available()
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

    def _drain(self) -> list[Any]:
        items: list[Any] = self._carry
        self._carry = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return items
            if item is _WAKE:
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
                job = self._placeholder_job(flight.row)
                policy = job.playbook.step(flight.row.step_id).retry
                decision = decide(policy, "transient", flight.row.attempt)
                status: Status = "retry" if decision.action == "retry" else "failed"
                late.append(Outcome(job, status, error="the step timed out", kind="transient",
                                    delay=decision.delay))
        return late

    def _placeholder_job(self, row: StepRow) -> StepJob:
        playbook = self.registry.playbook(row.playbook, row.playbook_version)
        return StepJob(row, playbook, {}, {}, {})

    # -- one transaction per turn ---------------------------------------------------
    def _turn(self, finished: list[Any], want: int, heartbeat: bool,
              now: float) -> tuple[list[StepJob], list[StepJob]]:
        to_dispatch: list[StepJob] = []
        plain = [i for i in finished if isinstance(i, Outcome) and is_plain_finish(i)]
        others = [i for i in finished if not (isinstance(i, Outcome) and is_plain_finish(i))]
        with self.store.transaction() as tx:
            if plain:
                for item, accepted in zip(plain, apply_finishes(tx, plain, self.id, now),
                                          strict=True):
                    self.inflight.pop(item.job.row.id, None)
                    self._count(tx, item, accepted, now)
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
                tx.steps.heartbeat(self.id, list(self.inflight), now + self.options.lease_seconds)
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
            target = S.PERSISTING if row.resume == "dispatch" else S.EXECUTING
            log_moves(tx, row, S.READY, S.CLAIMED, target, ts=now, actor=self.id,
                      data={"lease_token": row.lease_token})
            job = StepJob(row, playbook, run.inputs if run else {}, outputs[row.run_id],
                          {"id": row.run_id, "playbook": row.playbook,
                           "version": row.playbook_version, "attempt": row.attempt,
                           "pins": run.pins if run else None})
            if refused is not None:
                job.run["refused"] = refused
            if row.kind == "compensation" or row.resume == "dispatch":
                original = row.step_id.removeprefix("compensate:")
                job.run["intents"] = [
                    {"key": i.idempotency_key, "tool": i.tool, "args": i.args,
                     "status": i.status, "result": i.result, "undo": i.undo}
                    for i in tx.intents.for_step(row.run_id, original)
                ]
                origin = tx.steps.get(row.run_id, original)
                job.run["original_output"] = origin.output if origin else None
            if row.kind == "compensation":
                base = compensation.attempt_base(tx.approvals.for_run(row.run_id), row.step_id)
                job.run["attempts"] = row.attempt - base
            jobs.append(job)
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
    def _guard(self, fn: Callable[[StepJob], Any], job: StepJob) -> None:
        try:
            self.inbox.put(fn(job))
        except BaseException as exc:  # a bug must not lose the step: report it as failed
            # Only what Soloist did not raise on purpose is a bug ("internal error").
            error = describe(exc) if isinstance(exc, SoloistError) else \
                f"internal error: {describe(exc)}"
            self.inbox.put(Outcome(job, "failed", error=error, kind=classify(exc)))

    def _job(self, job: StepJob) -> Outcome | Dispatched:
        if job.run.get("refused"):
            return Outcome(job, "failed", error=str(job.run["refused"]))
        if job.row.kind == "compensation":
            return self._compensate(job)
        if job.row.resume == "dispatch":
            return self._dispatch(job)
        return self.runner.execute(job)

    def _dispatch(self, job: StepJob) -> Dispatched:
        """Call each pending intent's tool with its key; replay what was recorded."""
        row = job.row
        with self.store.read() as tx:
            intents = tx.intents.for_step(row.run_id, row.step_id)
            current = tx.steps.get(row.run_id, row.step_id)
            # What was dispatched even if the store no longer says so (a restore rewound it).
            kept = tx.ledger.dispatched([i.idempotency_key for i in intents
                                         if i.status in ("pending", "staged")])
        output = current.output if current is not None else None
        done = Dispatched(job, output=output)
        refused = self._inadmissible(intents)
        if refused is not None:
            # One bad intent stops them all before anything acts: a step never half-acts
            # because of arguments that could be known to fail.
            key, message = refused
            done.results.append((key, "failed", None, message, None))
            done.failure = Outcome(job, "failed", error=message)
            return done
        actor = self._actor_of(job)
        results: list[Any] = []
        for intent in intents:
            if intent.status == "dispatched":
                results.append(intent.result)
                continue
            if intent.status not in ("pending", "staged"):
                continue
            replay = kept.get(intent.idempotency_key)
            if replay is not None:  # done once already: its recorded result, never twice
                done.results.append((intent.idempotency_key, "dispatched", replay.result, None,
                                     self._undo_of(intent.tool, intent.args, replay.result)))
                results.append(replay.result)
                continue
            call = ToolCall(row.run_id, row.step_id, intent.idempotency_key,
                            self.runner.workspace, actor)
            try:
                result = self.runner.dispatch(intent.tool, intent.args, call)
            except Exception as exc:
                kind = classify(exc)
                policy = job.playbook.step(row.step_id).retry if row.kind == "step" \
                    else RetryPolicy()
                decision = decide(policy, "deterministic" if kind == "semantic" else kind,
                                  row.attempt, getattr(exc, "retry_after", None))
                status: Status = "retry" if decision.action == "retry" else "failed"
                message = describe(exc)
                if status == "failed":
                    done.results.append((intent.idempotency_key, "failed", None, message,
                                         None))
                done.failure = Outcome(job, status, error=message, delay=decision.delay,
                                       kind=kind)
                return done
            done.results.append((intent.idempotency_key, "dispatched", result, None,
                                 self._undo_of(intent.tool, intent.args, result)))
            results.append(result)
        if done.output is None and results and job.playbook.step(row.step_id).kind == "tool":
            done.output = results[0] if len(results) == 1 else results
        return done

    def _inadmissible(self, intents: list[IntentRow]) -> tuple[str, str] | None:
        """The first intent still to dispatch that its tool would refuse, and why."""
        for intent in intents:
            if intent.status not in ("pending", "staged"):
                continue
            try:
                self.runner.admit_intent(intent.tool, intent.args)
            except SoloistError as exc:
                return intent.idempotency_key, describe(exc)
        return None

    @staticmethod
    def _actor_of(job: StepJob) -> str:
        """Whose effect a dispatch is: the agent (at its pinned version) or the playbook."""
        row = job.row
        step = job.playbook.step(row.step_id) if row.kind == "step" else None
        if step is not None and step.agent is not None:
            pinned = (job.run.get("pins") or {}).get("agents", {}).get(step.agent)
            return f"agent:{step.agent}@v{pinned}" if pinned else f"agent:{step.agent}"
        return f"playbook:{row.playbook}@v{row.playbook_version}"

    def _undo_of(self, tool: str, args: dict[str, Any], result: Any) -> Any:
        """How to undo this dispatched call, if its tool declares a compensation."""
        spec = self.runner.tools.tools.get(tool)
        if spec is None or spec.compensate is None:
            return None
        try:
            return {"tool": spec.compensate.tool,
                    "args": spec.compensate.arguments(args, result)}
        except Exception:
            _log.warning("cannot derive the compensation of %s from its result", tool)
            return None

    def _compensate(self, job: StepJob) -> Dispatched:
        original = job.row.step_id.removeprefix("compensate:")
        spec = job.playbook.step(original).compensate
        intents = job.run.get("intents", [])
        results = [i["result"] for i in intents]
        # A compensation is a side effect too: done once (even before a snapshot restore
        # that forgot it), it is replayed from the dispatch ledger, never done again.
        key = f"{job.row.run_id}/{job.row.step_id}"
        with self.store.read() as tx:
            before = tx.ledger.dispatched([key]).get(key)
        if before is not None:
            return Dispatched(job, output=before.result)
        try:
            if spec is None:  # the tools say how: undo each dispatched intent, newest first
                output = [
                    self.runner.tools.get(i["undo"]["tool"]).invoke(i["undo"]["args"], ToolCall(
                        job.row.run_id, job.row.step_id,
                        f"{job.row.run_id}/{job.row.step_id}/{i['key'].rsplit('/', 1)[-1]}",
                        self.runner.workspace))
                    for i in reversed(intents) if i["status"] == "dispatched" and i["undo"]
                ]
            else:
                output = self.runner.compensate(spec, job, original,
                                                job.run.get("original_output"), results)
        except Exception as exc:
            # Counted from the last time a person sent it back, so their retry gets the
            # same backoff as the first; when they are used up, a person decides again.
            decision = decide(RetryPolicy(), classify(exc), job.run.get("attempts",
                                                                        job.row.attempt),
                              getattr(exc, "retry_after", None))
            status: Status = "retry" if decision.action == "retry" else "failed"
            return Dispatched(job, failure=Outcome(job, status, error=f"{exc}",
                                                   delay=decision.delay))
        return Dispatched(job, output=output, results=[(key, "dispatched", output, None, None)])

    # -- leases ------------------------------------------------------------------------
    def reap_expired(self, now: float) -> int:
        """Put steps whose lease expired back to ready (attempt + 1), or fail them.

        An expired lease means the worker stopped or died while the step ran: a transient
        failure of that attempt. A step that keeps killing its workers (a poison step: it
        runs out of memory, crashes the interpreter) would otherwise go round every worker
        for ever; after the step's ``retry.max_attempts`` it fails like any other.
        """
        count = 0
        try:
            with self.store.transaction() as tx:
                for row in tx.steps.expired(now, 200):
                    if self._fail_poison(tx, row, now):
                        count += 1
                    elif tx.steps.release_expired(row, now):
                        count += 1
                        tx.events.append(NewEvent("step.transition", {
                            "from": row.state, "to": "ready", "attempt": row.attempt + 1,
                            "reason": f"lease of {row.lease_owner} expired"},
                            run_id=row.run_id, step_id=row.step_id, actor=self.id, ts=now))
                if count:
                    tx.notify_ready()
        except StoreError:
            return 0
        return count

    def _fail_poison(self, tx: Transaction, row: StepRow, now: float) -> bool:
        """Fail an expired step that has used up its attempts; false if it may run again.

        Only steps that were executing: one that was dispatching its intents resumes the
        dispatch, which is idempotent. A compensation whose attempts run out this way goes
        to a person, as one that fails does.
        """
        if row.state != StepState.EXECUTING:
            return False
        if row.kind == "compensation":
            return self._fail_poison_compensation(tx, row, now)
        if row.kind != "step":
            return False
        job = self._placeholder_job(row)
        policy = job.playbook.step(row.step_id).retry
        if decide(policy, "transient", row.attempt).action != "fail":
            return False
        error = (f"PoisonStep: the lease of {row.lease_owner} expired during attempt "
                 f"{row.attempt} of {policy.max_attempts}: the worker running this step "
                 "stopped or died each time, and the step may be what kills it")
        return apply_outcome(tx, Outcome(job, "failed", error=error), self.id, now)

    def _fail_poison_compensation(self, tx: Transaction, row: StepRow, now: float) -> bool:
        """A compensation whose workers keep dying goes to a person, like one that fails."""
        attempts = row.attempt - compensation.attempt_base(tx.approvals.for_run(row.run_id),
                                                           row.step_id)
        if decide(RetryPolicy(), "transient", attempts).action != "fail":
            return False
        job = self._placeholder_job(row)
        job.run["attempts"] = attempts
        error = (f"PoisonStep: the lease of {row.lease_owner} expired during attempt "
                 f"{attempts}: the workers running this compensation stopped or died each time")
        return apply_outcome(tx, Outcome(job, "failed", error=error), self.id, now)

    def _release_in_hand(self) -> None:
        """On stop: steps still in hand go back to ready for another worker."""
        if not self.inflight:
            return
        now = time.time()
        try:
            with self.store.transaction() as tx:
                for flight in self.inflight.values():
                    row = flight.row
                    if tx.steps.update_fenced([StepUpdate(row.id, row.lease_token, S.READY,
                                                          available_at=now)]):
                        continue
                    tx.events.append(NewEvent("step.transition", {
                        "from": row.state, "to": "ready", "attempt": row.attempt,
                        "reason": "worker stopped"}, run_id=row.run_id, step_id=row.step_id,
                        actor=self.id, ts=now))
                tx.notify_ready()
        except (StoreError, LeaseLost):
            pass  # the leases will expire and be reaped
        self.inflight.clear()
