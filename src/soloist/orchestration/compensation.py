"""A compensation that cannot be done goes to a person; the run never stays compensating.

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

from typing import Any

from soloist.control.playbooks import Playbook
from soloist.store.base import ApprovalRow, NewEvent, StepRow, Transaction

REASON = "compensation"
PREFIX = "compensate:"
#: The end of every compensation gate's message: what the person may decide.
CHOICES = (" Approve to retry it, resolve if you undid it by hand, reject to give up "
           "(its effects stay).")


def original_of(step_id: str) -> str:
    """The step a compensating step undoes."""
    return step_id.removeprefix(PREFIX)


def gate_message(step_id: str, error: str, attempts: int, action: str = "") -> str:
    """What failed, then the choices: the first part is also what the run's error keeps."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    how = f" ({action})" if action else ""
    return (f"Undoing step {original_of(step_id)}{how} failed{tries}: "
            f"{error.rstrip('.')}.{CHOICES}")


def action_of(playbook: Playbook, step_id: str, intents: list[dict[str, Any]]) -> str:
    """The compensating action, as a person would name it: the playbook's, or the undo
    tools of the step's dispatched intents."""
    try:
        spec = playbook.step(original_of(step_id)).compensate
    except KeyError:
        spec = None
    if spec is not None:
        return f"tool {spec.tool}" if spec.tool else f"python {spec.python}"
    tools = sorted({str(i["undo"]["tool"]) for i in intents
                    if i.get("status") == "dispatched" and i.get("undo")})
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
