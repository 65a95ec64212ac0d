"""Compensation: a run that fails or is cancelled undoes what it did, newest first (saga).

When a run ends early, :func:`plan` picks the steps to undo and :func:`new_steps` queues
one compensating step for each, run one after the other (:func:`advance`); each is a step
row of kind ``compensation`` whose id names the step it undoes (:func:`step_id`,
:func:`original_of`: the only place that knows how). Its action is the playbook's
``compensate`` or, failing that, the undo its tools declared for each dispatched intent
(:class:`Compensator`).

A compensation that cannot be done goes to a person; the run never stays compensating.
A compensating step that fails deterministically, or transiently until its retries with
backoff are used up, waits at a gate of reason ``compensation`` whose message says which
step's undo failed and why. The person decides with the usual verbs:

====================================  ================================================
``soloist approve A``                 retry the compensation now (with fresh retries)
``soloist retry A --guidance G``      the same, with a note for the record
``soloist resolve A --note N``        it was undone by hand: the step counts as
                                      compensated
``soloist reject A --reason R``       give up: the effects stay, and the run says so
====================================  ================================================

Whatever is decided, the remaining compensations then run (an undo that failed does not
stop the others). A run with a compensation given up ends ``failed``; one resolved by hand
ends as it was going to (failed or cancelled). Either way the run's error names the
compensation, what failed and who decided what, and so does the episodic log
(``compensation.failed``, ``compensation.decided``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from soloist.control.playbooks import Playbook, RetryPolicy
from soloist.control.retry import decide, wait_of
from soloist.errors import classify
from soloist.execution.context import ToolCall
from soloist.execution.steps import Outcome, Status, StepJob, StepRunner
from soloist.orchestration.dispatch import Dispatched, IntentResult
from soloist.orchestration.lifecycle import (
    IntentStatus,
    RunState,
    StepState,
    TaskKind,
    check_run_move,
    fenced,
    log_moves,
)
from soloist.store.base import (
    ApprovalRow,
    IntentRow,
    NewEvent,
    NewStep,
    RunRow,
    StepRow,
    StepUpdate,
    Store,
    Transaction,
)

S = StepState
REASON = "compensation"
_PREFIX = "compensate:"
#: The end of every compensation gate's message: what the person may decide.
CHOICES = (" Approve to retry it, resolve if you undid it by hand, reject to give up "
           "(its effects stay).")


def step_id(original: str) -> str:
    """The id of the step that undoes ``original`` (its row has kind compensation)."""
    return f"{_PREFIX}{original}"


def original_of(step_id: str) -> str:
    """The step a compensating step undoes."""
    return step_id.removeprefix(_PREFIX)


# -- what to undo, and in which order (pure) ------------------------------------------
def plan(steps: Iterable[StepRow], intents: Iterable[IntentRow],
         declared: Collection[str]) -> list[str]:
    """The steps of a run to undo, newest first.

    Finished steps whose playbook step declares a compensating action (``declared``),
    the same still persisting if one of their intents was dispatched, and steps whose
    dispatched intents' tools declare how to undo them (an agent's writes, say).
    """
    dispatched = [i for i in intents if i.status == IntentStatus.DISPATCHED]
    acted = {i.step_id for i in dispatched}
    undoable = {i.step_id for i in dispatched if i.undo}
    chosen = [
        s for s in steps
        if s.kind == TaskKind.STEP
        and ((s.step_id in declared and (s.state == S.DONE or s.step_id in acted))
             or s.step_id in undoable)
    ]
    chosen.sort(key=lambda s: (s.finished_at or 0.0, s.position), reverse=True)
    return [s.step_id for s in chosen]


def new_steps(run: RunRow, playbook: Playbook, to_undo: Sequence[str],
              now: float) -> list[NewStep]:
    """The compensating steps, one after the other: the first is ready, each of the
    others waits for the one before it (see :func:`advance`)."""
    base = len(playbook.steps)
    return [
        NewStep(run.id, step_id(original), base + i, TaskKind.COMPENSATION, playbook.name,
                run.playbook_version, run.queue, run.priority,
                S.READY if i == 0 else S.SCHEDULED, 0 if i == 0 else 1, now, now)
        for i, original in enumerate(to_undo)
    ]


def tool_undos(intents: Sequence[IntentRow]) -> list[IntentRow]:
    """With no compensating action declared: the dispatched intents whose tools say how
    to undo them, newest first."""
    return [i for i in reversed(intents) if i.status == IntentStatus.DISPATCHED and i.undo]


def undo_key(run_id: str, compensation_id: str, intent_key: str) -> str:
    """The idempotency key of one intent's undo: the compensation's, then the intent's
    index."""
    return f"{run_id}/{compensation_id}/{intent_key.rsplit('/', 1)[-1]}"


# -- the gate of a compensation that failed ------------------------------------------
def gate_message(step_id: str, error: str, attempts: int, action: str = "") -> str:
    """What failed, then the choices: the first part is also what the run's error keeps."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    how = f" ({action})" if action else ""
    return (f"Undoing step {original_of(step_id)}{how} failed{tries}: "
            f"{error.rstrip('.')}.{CHOICES}")


def action_of(playbook: Playbook, step_id: str, intents: Sequence[IntentRow]) -> str:
    """The compensating action, as a person would name it: the playbook's, or the undo
    tools of the step's dispatched intents."""
    try:
        spec = playbook.step(original_of(step_id)).compensate
    except KeyError:
        spec = None
    if spec is not None:
        return f"tool {spec.tool}" if spec.tool else f"python {spec.python}"
    tools = sorted({str(i.undo["tool"]) for i in intents
                    if i.status == IntentStatus.DISPATCHED and i.undo})
    return ", ".join(f"tool {name}" for name in tools)


def ask_a_person(tx: Transaction, row: StepRow, approval_id: str, error: str, attempts: int,
                 actor: str, now: float, action: str = "") -> ApprovalRow:
    """Open the gate for a failed compensation (its step is already awaiting approval)."""
    approval = ApprovalRow(
        id=approval_id, run_id=row.run_id, step_id=row.step_id, attempt=row.attempt,
        reason=REASON, message=gate_message(row.step_id, error, attempts, action),
        created_at=now,
        expires_at=None, default_decision=None, decision=None, decided_by=None,
        decided_at=None, note=None,
    )
    tx.approvals.insert(approval)
    tx.events.append(NewEvent("compensation.failed", {
        "step": original_of(row.step_id), "error": error, "attempts": attempts,
        "action": action, "approval": approval.id,
    }, run_id=row.run_id, step_id=row.step_id, actor=actor, ts=now))
    tx.events.append(NewEvent("approval.requested", {
        "approval": approval.id, "message": approval.message, "intents": [],
        "compensation": original_of(row.step_id),
    }, run_id=row.run_id, step_id=row.step_id, actor=actor, ts=now))
    return approval


def decided(tx: Transaction, approval: ApprovalRow, decision: str, actor: str,
            note: str | None, now: float) -> None:
    """Record what the person decided about the failed compensation, in the log."""
    tx.events.append(NewEvent("compensation.decided", {
        "step": original_of(approval.step_id), "approval": approval.id,
        "decision": decision, "note": note,
    }, run_id=approval.run_id, step_id=approval.step_id, actor=actor, ts=now))


def attempt_base(approvals: list[ApprovalRow], step_id: str) -> int:
    """The attempt at which a person last sent this compensation back: its retries count
    from there, so a retry a person asked for gets its own backoff."""
    return max((a.attempt for a in approvals
                if a.step_id == step_id and a.reason == REASON and a.decision is not None),
               default=0)


def outcome_note(approval: ApprovalRow) -> str | None:
    """What the run's error says about one decided compensation gate, if anything."""
    failed = approval.message.removesuffix(CHOICES).rstrip(".")
    why = f": {approval.note}" if approval.note else ""
    if approval.decision == "rejected":
        return f"{failed}; given up by {approval.decided_by}{why}, its effects stay"
    if approval.decision == "resolved":
        return f"{failed}; undone by hand by {approval.decided_by}{why}"
    return None


def summary(approvals: list[ApprovalRow]) -> tuple[list[str], bool]:
    """The notes for the run's error, and whether any compensation was given up."""
    notes: list[str] = []
    gave_up = False
    for approval in sorted(approvals, key=lambda a: a.decided_at or 0.0):
        if approval.reason != REASON:
            continue
        note = outcome_note(approval)
        if note is not None:
            notes.append(note)
        gave_up = gave_up or approval.decision == "rejected"
    return notes, gave_up


def gate_failed(tx: Transaction, job: StepJob, error: str, actor: str, now: float,
                approval_id: str) -> bool:
    """A compensation failed for good: it waits for a person instead of ending the run.

    False if its lease was lost (nothing written)."""
    row = job.row
    if not fenced(tx, StepUpdate(row.id, row.lease_token, S.AWAITING_APPROVAL, error=error)):
        return False
    log_moves(tx, row, S.EXECUTING, S.AWAITING_APPROVAL, ts=now, actor=actor,
              data={"error": error, "reason": REASON})
    attempts = job.run.attempts if job.run.attempts is not None else row.attempt
    ask_a_person(tx, row, approval_id, error, attempts, actor, now,
                 action_of(job.playbook, row.step_id, job.run.intents))
    return True


# -- the run goes on --------------------------------------------------------------------
def record_done(tx: Transaction, row: StepRow, actor: str, now: float) -> None:
    """A compensation is done (its step row already says so): the step it undid counts as
    compensated, and the next compensation starts."""
    log_moves(tx, row, S.PERSISTING, S.DONE, ts=now, actor=actor)
    original = original_of(row.step_id)
    orig = tx.steps.get(row.run_id, original)
    if orig is not None and orig.state == S.DONE:
        tx.steps.set_state(orig.id, S.COMPENSATED, expect=[S.DONE])
        tx.events.append(NewEvent("step.transition", {"from": "done", "to": "compensated"},
                                  run_id=row.run_id, step_id=original, actor=actor, ts=now))
    advance(tx, row.run_id, now)


def advance(tx: Transaction, run_id: str, now: float) -> None:
    """After one compensation finished (or a person decided about it): start the next,
    or end the run."""
    run = tx.runs.get(run_id)
    if run is None or run.state != RunState.COMPENSATING:
        return
    pending = [s for s in tx.steps.for_run(run_id)
               if s.kind == TaskKind.COMPENSATION and s.state == S.SCHEDULED]
    if pending:
        nxt = min(pending, key=lambda s: s.position)
        for readied in tx.steps.promote(run_id, [nxt.step_id], now):
            tx.events.append(NewEvent("step.transition", {"from": "scheduled", "to": "ready"},
                                      run_id=run_id, step_id=readied, ts=now))
        tx.notify_ready()
        return
    # A compensation a person resolved by hand or gave up is part of how the run ended.
    notes, gave_up = summary(tx.approvals.for_run(run_id))
    final = RunState.FAILED if gave_up else RunState(run.final_state or RunState.FAILED)
    error = "; ".join(part for part in (run.error, *notes) if part) or None
    check_run_move(RunState.COMPENSATING, final)
    tx.runs.set_state(run_id, final, expect=[RunState.COMPENSATING], error=error,
                      finished_at=now)
    tx.events.append(NewEvent(f"run.{final.value}", {"error": error, "compensated": not gave_up},
                              run_id=run_id, ts=now))


# -- doing it (in an executor thread) -----------------------------------------------------
class Compensator:
    def __init__(self, store: Store, runner: StepRunner) -> None:
        self.store = store
        self.runner = runner

    def run(self, job: StepJob) -> Dispatched:
        """Undo one step: its declared compensating action, or its tools' undos."""
        row = job.row
        original = original_of(row.step_id)
        spec = job.playbook.step(original).compensate
        intents = job.run.intents
        # A compensation is a side effect too: done once (even before a snapshot restore
        # that forgot it), it is replayed from the dispatch ledger, never done again.
        key = f"{row.run_id}/{row.step_id}"
        with self.store.read() as tx:
            before = tx.ledger.dispatched([key]).get(key)
        if before is not None:
            return Dispatched(job, output=before.result)
        try:
            if spec is None:  # the tools say how: undo each dispatched intent, newest first
                output = [
                    self.runner.tools.get(i.undo["tool"]).invoke(i.undo["args"], ToolCall(
                        row.run_id, row.step_id,
                        undo_key(row.run_id, row.step_id, i.idempotency_key),
                        self.runner.workspace))
                    for i in tool_undos(intents)
                ]
            else:
                output = self.runner.compensate(spec, job, original, job.run.original_output,
                                                [i.result for i in intents])
        except Exception as exc:
            wait = wait_of(exc)
            if wait is not None:  # a limit or an open breaker: a wait, not an attempt
                return Dispatched(job, failure=Outcome(job, "retry", error=f"{exc}",
                                                       same_attempt=True, delay=wait))
            # Counted from the last time a person sent it back, so their retry gets the
            # same backoff as the first; when they are used up, a person decides again.
            attempts = job.run.attempts if job.run.attempts is not None else row.attempt
            decision = decide(RetryPolicy(), classify(exc), attempts,
                              getattr(exc, "retry_after", None))
            status: Status = "retry" if decision.action == "retry" else "failed"
            return Dispatched(job, failure=Outcome(job, status, error=f"{exc}",
                                                   delay=decision.delay))
        return Dispatched(job, output=output,
                          results=[IntentResult(key, IntentStatus.DISPATCHED, output)])
