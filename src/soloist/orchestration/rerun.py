"""A person retries a failed run from where it failed.

Only a run that failed with nothing to undo (it never compensated) can be retried: its
done steps stay done, with their outputs and their dispatched intents (nothing acts
twice); its failed steps go again as new (attempt 1, with their retry policy anew), and so
do the steps its failure cancelled: ready if they were not waiting for another step,
scheduled if they were. The run is running again. A run that compensated undid its done
steps' effects, so going on from its failed step would build on what is no longer there:
it is refused, and a new run is the way.

This is the one way out of a terminal state, so it lives here and not in the lifecycle
table: every move it makes is logged (``run.retried``, and a ``step.transition`` per step
with ``retry: true``).
"""

from __future__ import annotations

from soloist.errors import InvalidState, NotFound
from soloist.orchestration.lifecycle import RunState, StepState, TaskKind
from soloist.store.base import NewEvent, Transaction

S = StepState


def retry_run(tx: Transaction, run_id: str, actor: str, now: float) -> list[str]:
    """Reopen the failed run ``run_id``; the steps that go again, in playbook order."""
    run = tx.runs.get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `soloist runs` lists them")
    if run.state != RunState.FAILED:
        raise InvalidState(f"run {run_id} is {run.state}; only a failed run can be retried")
    steps = tx.steps.for_run(run_id)
    if run.final_state is not None or any(s.kind == TaskKind.COMPENSATION for s in steps):
        raise InvalidState(f"run {run_id} undid its done steps when it failed, so it cannot "
                           "go on from where it failed; start a new run")
    again = [s for s in steps if s.kind == TaskKind.STEP and s.state in (S.FAILED,
                                                                         S.CANCELLED)]
    if not any(s.state == S.FAILED for s in again):
        raise InvalidState(f"run {run_id} has no failed step to go again from")
    if not tx.runs.reopen(run_id):
        raise InvalidState(f"run {run_id} changed just now; look again")
    tx.events.append(NewEvent("run.retried", {
        "error": run.error, "steps": [s.step_id for s in again]},
        run_id=run_id, actor=actor, ts=now))
    for step in sorted(again, key=lambda s: s.position):
        to = S.SCHEDULED if step.state == S.CANCELLED and step.pending_needs > 0 else S.READY
        tx.steps.reopen(step.id, to, now)
        tx.events.append(NewEvent("step.transition", {
            "from": step.state, "to": to.value, "retry": True},
            run_id=run_id, step_id=step.step_id, actor=actor, ts=now))
    tx.notify_ready()
    return [s.step_id for s in sorted(again, key=lambda s: s.position)]
