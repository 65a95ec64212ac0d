"""Turn what a worker learned about its steps into one transaction of lifecycle moves.

Each move is checked against the transition table and appended to the episodic log. A
write to a step is fenced by its lease token: if another claim took the step since, the
whole outcome is refused and nothing of it is written.
"""

from __future__ import annotations

from typing import Any

from soloist.control import display
from soloist.execution.steps import Outcome, StepJob
from soloist.orchestration import compensation, runs, waits
from soloist.orchestration.dispatch import Dispatched
from soloist.orchestration.lifecycle import (
    UNCONFIRMED,
    IntentStatus,
    Resume,
    RunState,
    StepState,
    TaskKind,
    fenced,
    log_moves,
)
from soloist.store.base import (
    ApprovalRow,
    IntentRow,
    NewEvent,
    StepUpdate,
    Transaction,
)

S = StepState


def is_plain_finish(outcome: Outcome) -> bool:
    """A step that simply finished (done or skipped): the common case, written in batches."""
    return outcome.status in ("done", "skipped") and outcome.job.row.kind == TaskKind.STEP


def apply_finishes(tx: Transaction, outcomes: list[Outcome], actor: str,
                   now: float) -> list[bool]:
    """Record many plain finishes with a few statements; one bool per outcome (accepted).

    The same moves as :func:`apply_outcome`, batched: fence all (one read of the tokens,
    which locks the rows on PostgreSQL), write all, ready all dependents at once, count
    the runs down at once, then finish the runs that reached zero.
    """
    tokens = tx.steps.lease_tokens([o.job.row.id for o in outcomes])
    accepted = [tokens.get(o.job.row.id) == o.job.row.lease_token for o in outcomes]
    chosen = [o for o, ok in zip(outcomes, accepted, strict=True) if ok]
    if not chosen:
        return accepted
    tx.steps.finish_many([
        StepUpdate(o.job.row.id, o.job.row.lease_token,
                   S.DONE if o.status == "done" else S.SKIPPED, output=o.output,
                   finished_at=now)
        for o in chosen
    ])
    pairs = [(o.job.row.run_id, dep) for o in chosen
             for dep in o.job.playbook.dependents_map[o.job.row.step_id]]
    readied = set(tx.steps.promote_many(pairs, now)) if pairs else set()
    if readied:
        tx.notify_ready()
    for o in chosen:
        row = o.job.row
        if o.emitted is not None:
            runs.publish(tx, o.emitted[0], o.emitted[1], row.run_id, now)
        mine = [d for d in o.job.playbook.dependents_map[row.step_id]
                if (row.run_id, d) in readied]
        data: dict[str, Any] = {"readied": mine} if mine else {}
        if o.status == "done":
            moves: tuple[StepState, ...] = (S.EXECUTING, S.CHECKING, S.PERSISTING, S.DONE)
            data["took_ms"] = round(((o.checked or now) - (o.started or now)) * 1000, 3)
        else:
            moves = (S.EXECUTING, S.SKIPPED)
        log_moves(tx, row, *moves, ts=o.checked or now, actor=actor, data=data)
        tx.events.extend(o.events)
        if o.calls:
            tx.costs.record(o.calls)
    jobs = {o.job.row.run_id: o.job for o in chosen}
    for run_id, remaining in tx.runs.step_finished([o.job.row.run_id for o in chosen]):
        if remaining == 0:
            runs.finish_run(tx, run_id, jobs[run_id].row.playbook, jobs[run_id].inputs, now)
    return accepted


def apply_outcome(tx: Transaction, outcome: Outcome, actor: str, now: float) -> bool:
    """Record one executed step; false if its lease was lost (nothing written)."""
    if is_plain_finish(outcome):
        return apply_finishes(tx, [outcome], actor, now)[0]
    accepted = _apply_outcome(tx, outcome, actor, now)
    if accepted:
        # What an agent did (model calls, policy decisions, tool calls) joins the log and
        # the cost ledger with the outcome it led to, in the same transaction.
        tx.events.extend(outcome.events)
        if outcome.calls:
            tx.costs.record(outcome.calls)
    return accepted


def _apply_outcome(tx: Transaction, outcome: Outcome, actor: str, now: float) -> bool:
    row, job = outcome.job.row, outcome.job
    playbook = job.playbook
    status = outcome.status
    checked = outcome.checked or now
    if status == "wait":
        return waits.begin(tx, outcome, actor, now)
    if status == "dispatch":
        if not fenced(tx, StepUpdate(row.id, row.lease_token, S.PERSISTING,
                                     output=outcome.output, keep_lease=True,
                                     resume=Resume.DISPATCH)):
            return False
        _stage(tx, outcome, IntentStatus.PENDING, now)
        log_moves(tx, row, S.EXECUTING, S.CHECKING, S.PERSISTING, ts=checked, actor=actor,
                  data={"intents": len(outcome.intents)})
        return True
    if status == "gate":
        semantic = outcome.error is not None
        resume = Resume.EXECUTE if semantic else Resume.DISPATCH
        if not fenced(tx, StepUpdate(row.id, row.lease_token, S.AWAITING_APPROVAL,
                                     output=outcome.output, error=outcome.error,
                                     resume=resume)):
            return False
        _stage(tx, outcome, IntentStatus.STAGED, now)
        approval = open_gate(tx, job, "semantic" if semantic else "gate", outcome.gate_message,
                             [{"tool": i.tool, "args": i.args, "key": i.idempotency_key}
                              for i in outcome.intents], actor, now)
        log_moves(tx, row, S.EXECUTING, S.CHECKING, S.AWAITING_APPROVAL, ts=checked, actor=actor,
                  data={"approval": approval.id, "reason": approval.reason,
                        "error": outcome.error})
        return True
    if status == "retry":
        attempt = row.attempt if outcome.same_attempt else row.attempt + 1
        if not fenced(tx, StepUpdate(row.id, row.lease_token, S.READY, error=outcome.error,
                                     attempt=attempt, available_at=now + outcome.delay)):
            return False
        log_moves(tx, row, S.EXECUTING, S.READY, ts=checked, actor=actor,
                  data={"error": outcome.error, "kind": outcome.kind,
                        "retry_in": round(outcome.delay, 3)})
        tx.notify_ready()
        return True
    # failed
    if row.kind == TaskKind.COMPENSATION:
        # Only a bug in the worker gets here; even then the undo is not skipped silently.
        return compensation.gate_failed(tx, job, outcome.error or "it failed", actor, now,
                                        runs.new_id("a"))
    if not fenced(tx, StepUpdate(row.id, row.lease_token, S.FAILED, error=outcome.error,
                                 finished_at=now)):
        return False
    log_moves(tx, row, S.EXECUTING, S.FAILED, ts=checked, actor=actor,
              data={"error": outcome.error, "kind": outcome.kind})
    runs.end_run(tx, row.run_id, playbook, final_state=RunState.FAILED,
                 error=f"step {row.step_id} failed: {outcome.error}", actor=actor, now=now)
    return True


def open_gate(tx: Transaction, job: StepJob, reason: str, message: str,
              intents: list[dict[str, Any]], actor: str, now: float) -> ApprovalRow:
    """Ask a person about a step: the approval row and its ``approval.requested`` event,
    showing ``intents`` (tool, args, key) exactly as they would be dispatched."""
    row = job.row
    step = job.playbook.step(row.step_id)
    timeout = step.gate.timeout if step.gate is not None else None
    approval = ApprovalRow(
        id=runs.new_id("a"), run_id=row.run_id, step_id=row.step_id, attempt=row.attempt,
        reason=reason,
        # One line, every active character escaped: data in the message (an input, an
        # error) cannot forge a line or style what the person approving reads.
        message=display.one_line(message),
        created_at=now, expires_at=None if timeout is None else now + timeout,
        default_decision=step.gate.default if step.gate is not None else None,
        decision=None, decided_by=None, decided_at=None, note=None,
    )
    tx.approvals.insert(approval)
    tx.events.append(NewEvent("approval.requested", {
        "approval": approval.id, "message": approval.message, "intents": intents,
    }, run_id=row.run_id, step_id=row.step_id, actor=actor, ts=now))
    return approval


def _stage(tx: Transaction, outcome: Outcome, status: IntentStatus, now: float) -> None:
    row = outcome.job.row
    tx.intents.insert_many([
        IntentRow(row.run_id, row.step_id, i.index, i.idempotency_key, i.tool, i.args,
                  i.description, status, None, None, now, None)
        for i in outcome.intents
    ])


def apply_dispatched(tx: Transaction, done: Dispatched, actor: str, now: float) -> bool:
    """Record dispatch results; then the step is done, retried or failed."""
    row = done.job.row
    for r in done.results:
        tx.intents.record_result(r.key, r.status, r.result, r.error, now, r.undo)
        tx.events.append(NewEvent("intent.dispatched", {
            "key": r.key, "status": r.status.value, "result": r.result, "error": r.error,
        }, run_id=row.run_id, step_id=row.step_id, actor=actor, ts=now))
    if done.failure is not None:
        failure = done.failure
        if failure.status == "gate" and done.stopped_at is not None:
            return _unconfirmed(tx, done, done.stopped_at, actor, now)
        target = S.READY if failure.status == "retry" else S.FAILED
        if target == S.FAILED and row.kind == TaskKind.COMPENSATION:
            return compensation.gate_failed(tx, done.job, failure.error or "it failed",
                                            actor, now, runs.new_id("a"))
        # A wait that is nobody's failure (a limit, an open breaker) spends no attempt.
        attempt = row.attempt if failure.same_attempt else row.attempt + 1
        update = StepUpdate(row.id, row.lease_token, target, error=failure.error,
                            attempt=attempt if target == S.READY else None,
                            available_at=now + failure.delay if target == S.READY else None,
                            finished_at=now if target == S.FAILED else None)
        if not fenced(tx, update):
            return False
        data: dict[str, Any] = {"error": failure.error, "kind": failure.kind}
        if target == S.READY and failure.same_attempt:
            data["waits"] = round(failure.delay, 3)  # a wait, no attempt: for how long
        log_moves(tx, row, S.PERSISTING, target, ts=now, actor=actor, data=data)
        if target == S.FAILED:
            runs.end_run(tx, row.run_id, done.job.playbook, final_state=RunState.FAILED,
                         error=f"step {row.step_id} failed: {failure.error}", actor=actor,
                         now=now)
        else:
            tx.notify_ready()
        return True
    if not fenced(tx, StepUpdate(row.id, row.lease_token, S.DONE, output=done.output,
                                 finished_at=now)):
        return False
    if row.kind == TaskKind.COMPENSATION:
        compensation.record_done(tx, row, actor, now)
    else:
        step_finished(tx, done.job, now, (S.PERSISTING, S.DONE), now, actor)
    return True


def _unconfirmed(tx: Transaction, done: Dispatched, key: str, actor: str, now: float) -> bool:
    """An intent whose outcome nothing can prove: the step waits for a person, showing
    that intent; approving sends it again, ``resolve`` records it as done (gates.py)."""
    row = done.job.row
    if not fenced(tx, StepUpdate(row.id, row.lease_token, S.AWAITING_APPROVAL,
                                 output=done.output, error=done.failure.error if done.failure
                                 else None, resume=Resume.DISPATCH)):
        return False
    tx.intents.mark(key, IntentStatus.STAGED,
                    expect=[IntentStatus.TRANSMITTING, IntentStatus.PENDING], now=now)
    intent = tx.intents.get(key)
    shown = [] if intent is None else [
        {"tool": intent.tool, "args": intent.args, "key": intent.idempotency_key}]
    message = done.failure.gate_message if done.failure else "a person decides"
    approval = open_gate(tx, done.job, UNCONFIRMED, message, shown, actor, now)
    log_moves(tx, row, S.PERSISTING, S.AWAITING_APPROVAL, ts=now, actor=actor,
              data={"approval": approval.id, "reason": UNCONFIRMED, "key": key})
    return True


def step_finished(tx: Transaction, job: StepJob, now: float, moves: tuple[StepState, ...],
                  ts: float, actor: str, data: dict[str, Any] | None = None) -> None:
    """A step is done or skipped: log it, ready its dependents, maybe finish the run.

    The steps this made ready are named in the same event (``readied``) rather than in an
    event each: one record per persistence point keeps the log cheap to write.
    """
    row = job.row
    dependents = job.playbook.dependents_map[row.step_id]
    promoted = tx.steps.promote(row.run_id, dependents, now) if dependents else []
    extra = dict(data or {})
    if promoted:
        extra["readied"] = promoted
        tx.notify_ready()
    log_moves(tx, row, *moves, ts=ts, actor=actor, data=extra)
    for run_id, remaining in tx.runs.step_finished([row.run_id]):
        if remaining == 0:
            runs.finish_run(tx, run_id, row.playbook, job.inputs, now)
