"""Leases: a claimed step is held by one worker until its lease expires.

The holder renews its leases by heartbeat and gives back what it holds when it stops. A
lease that expired means its worker stopped or died while the step ran: the step goes
back to ready for another attempt, unless it is a poison step (see :func:`poison_error`).
Every write here is fenced by the lease token, so a late write of a stale worker is
refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from soloist.control.playbooks import RetryPolicy
from soloist.control.registry import Registry
from soloist.control.retry import decide
from soloist.errors import LeaseLost, StoreError
from soloist.execution.steps import Outcome, RunInfo, StepJob
from soloist.orchestration import compensation
from soloist.orchestration.lifecycle import StepState, TaskKind
from soloist.orchestration.outcomes import apply_outcome
from soloist.store.base import NewEvent, StepRow, StepUpdate, Store, Transaction

S = StepState
#: How many expired leases one reaping pass looks at.
REAP_BATCH = 200


def poison_error(row: StepRow, policy: RetryPolicy, attempts: int) -> str | None:
    """Why a step whose lease expired fails now instead of running again, or None.

    A step that keeps killing its workers (it runs out of memory, crashes the
    interpreter) would otherwise go round every worker for ever; once the lease expired
    on its last attempt (``attempts`` counted as its retry policy counts them) it fails
    like any other. Only a step that was executing: one that was dispatching resumes
    the dispatch, which is idempotent.
    """
    if row.state != S.EXECUTING or row.kind not in (TaskKind.STEP, TaskKind.COMPENSATION):
        return None
    if decide(policy, "transient", attempts).action != "fail":
        return None
    if row.kind == TaskKind.COMPENSATION:
        return (f"PoisonStep: the lease of {row.lease_owner} expired during attempt "
                f"{attempts}: the workers running this compensation stopped or died each "
                "time")
    return (f"PoisonStep: the lease of {row.lease_owner} expired during attempt "
            f"{attempts} of {policy.max_attempts}: the worker running this step "
            "stopped or died each time, and the step may be what kills it")


def placeholder_job(registry: Registry, row: StepRow, attempts: int | None = None) -> StepJob:
    """A job for recording an outcome of a step that is not running (nothing to render)."""
    playbook = registry.playbook(row.playbook, row.playbook_version)
    return StepJob(row, playbook, {}, {}, RunInfo(row.run_id, row.playbook,
                                                  row.playbook_version, row.attempt,
                                                  attempts=attempts))


class Leases:
    """The leases one worker holds, and the reaping of everyone's expired ones."""

    def __init__(self, store: Store, registry: Registry, owner: str,
                 lease_seconds: float) -> None:
        self.store = store
        self.registry = registry
        self.owner = owner
        self.lease_seconds = lease_seconds
        #: Renewed three times a lease: a beat or two may be late without losing a step.
        self.heartbeat_every = lease_seconds / 3
        #: Expired leases are looked for twice a lease (not in a busy loop for short ones).
        self.reap_every = max(0.5, lease_seconds / 2)

    def heartbeat(self, tx: Transaction, step_ids: Sequence[int], now: float) -> None:
        """Renew the leases of the steps in hand."""
        tx.steps.heartbeat(self.owner, list(step_ids), now + self.lease_seconds)

    def reap_expired(self, now: float) -> int:
        """Put steps whose lease expired back to ready (attempt + 1), or fail poison steps;
        returns how many. A store error leaves them for the next pass."""
        count = 0
        try:
            with self.store.transaction() as tx:
                for row in tx.steps.expired(now, REAP_BATCH):
                    if self._fail_poison(tx, row, now):
                        count += 1
                    elif tx.steps.release_expired(row, now):
                        count += 1
                        tx.events.append(NewEvent("step.transition", {
                            "from": row.state, "to": "ready", "attempt": row.attempt + 1,
                            "reason": f"lease of {row.lease_owner} expired"},
                            run_id=row.run_id, step_id=row.step_id, actor=self.owner, ts=now))
                if count:
                    tx.notify_ready()
        except StoreError:
            return 0
        return count

    def _fail_poison(self, tx: Transaction, row: StepRow, now: float) -> bool:
        """Fail a poison step; false if it may run again.

        A compensation whose attempts run out this way goes to a person, as one that
        fails does (its attempts count from the last time a person sent it back).
        """
        if row.state != S.EXECUTING:
            return False  # the common case: decided without reading anything
        if row.kind == TaskKind.COMPENSATION:
            attempts = row.attempt - compensation.attempt_base(
                tx.approvals.for_run(row.run_id), row.step_id)
            job = placeholder_job(self.registry, row, attempts)
            error = poison_error(row, RetryPolicy(), attempts)
        elif row.kind == TaskKind.STEP:
            job = placeholder_job(self.registry, row)
            error = poison_error(row, job.playbook.step(row.step_id).retry, row.attempt)
        else:
            return False
        if error is None:
            return False
        return apply_outcome(tx, Outcome(job, "failed", error=error), self.owner, now)

    def release(self, rows: Iterable[StepRow]) -> None:
        """On stop: the steps still in hand go back to ready for another worker."""
        rows = list(rows)
        if not rows:
            return
        now = self.store.now()
        try:
            with self.store.transaction() as tx:
                for row in rows:
                    if tx.steps.update_fenced([StepUpdate(row.id, row.lease_token, S.READY,
                                                          available_at=now)]):
                        continue
                    tx.events.append(NewEvent("step.transition", {
                        "from": row.state, "to": "ready", "attempt": row.attempt,
                        "reason": "worker stopped"}, run_id=row.run_id, step_id=row.step_id,
                        actor=self.owner, ts=now))
                tx.notify_ready()
        except (StoreError, LeaseLost):
            pass  # the leases will expire and be reaped
