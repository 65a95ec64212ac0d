"""Human gates: a person approves, rejects, or sends a step back with guidance.

Each decision is a structured record (who, when, what, why) kept on the approval and in
the episodic log, with the exact intents that the decision lets through or stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from soloist.control import overrides
from soloist.control.playbooks import Playbook
from soloist.control.registry import Registry
from soloist.errors import InvalidState, NotFound
from soloist.orchestration import compensation, runs
from soloist.orchestration.lifecycle import (
    UNCONFIRMED,
    IntentStatus,
    Resume,
    RunState,
    StepState,
)
from soloist.store.base import ApprovalRow, NewEvent, Store, Transaction

S = StepState


@dataclass(frozen=True)
class Edit:
    """A person's change to one staged intent at its gate: its new arguments (already
    checked against its tool's schema by the caller)."""

    idx: int
    args: dict[str, Any]


def _apply_edits(tx: Transaction, approval: ApprovalRow, edits: Sequence[Edit], actor: str,
                 note: str | None, now: float, playbook: Playbook) -> None:
    """Write the edits and, for each, an ``approval.override`` event holding the intent as
    it was and as it now is: what the person changed is kept beside what was proposed,
    with the agent steps whose drafts it corrects (its ``sources``)."""
    sources = overrides.sources(playbook, approval.step_id)
    staged = {i.idx: i for i in tx.intents.for_step(approval.run_id, approval.step_id)
              if i.status == IntentStatus.STAGED}
    for edit in edits:
        intent = staged.get(edit.idx)
        if intent is None or not tx.intents.set_args(approval.run_id, approval.step_id,
                                                     edit.idx, edit.args):
            raise InvalidState(f"approval {approval.id} has no staged intent {edit.idx} to "
                               f"edit (its intents: {', '.join(map(str, staged)) or 'none'})")
        if edit.args == intent.args:
            continue
        tx.events.append(NewEvent("approval.override", {
            "approval": approval.id, "idx": edit.idx, "tool": intent.tool,
            "key": intent.idempotency_key, "before": intent.args, "after": edit.args,
            "reason": note, "playbook": playbook.name, "sources": sources,
        }, run_id=approval.run_id, step_id=approval.step_id, actor=actor, ts=now))


def _open(tx: Transaction, approval_id: str) -> ApprovalRow:
    approval = tx.approvals.get(approval_id)
    if approval is None:
        raise NotFound(f"no approval {approval_id!r}; `soloist approvals` lists the open ones")
    if approval.decision is not None:
        raise InvalidState(f"approval {approval_id} was already decided: {approval.decision} "
                           f"by {approval.decided_by}")
    return approval


def _record(tx: Transaction, approval: ApprovalRow, decision: str, actor: str,
            note: str | None, now: float) -> None:
    if not tx.approvals.decide(approval.id, decision, actor, note, now):
        raise InvalidState(f"approval {approval.id} was decided by someone else just now")
    intents = tx.intents.for_step(approval.run_id, approval.step_id)
    tx.events.append(NewEvent("approval.decided", {
        "approval": approval.id, "decision": decision, "note": note,
        "intents": [{"tool": i.tool, "args": i.args, "key": i.idempotency_key}
                    for i in intents if i.status == IntentStatus.STAGED],
    }, run_id=approval.run_id, step_id=approval.step_id, actor=actor, ts=now))


def _step(tx: Transaction, approval: ApprovalRow) -> int:
    step = tx.steps.get(approval.run_id, approval.step_id)
    if step is None or step.state != S.AWAITING_APPROVAL:
        raise InvalidState(f"step {approval.step_id} of run {approval.run_id} is not waiting")
    return step.id


def _move(tx: Transaction, approval: ApprovalRow, to: S, actor: str, now: float,
          **data: object) -> None:
    tx.events.append(NewEvent("step.transition", {"from": S.AWAITING_APPROVAL.value,
                                                  "to": to.value, **data},
                              run_id=approval.run_id, step_id=approval.step_id, actor=actor,
                              ts=now))


class Gates:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def approve(self, approval_id: str, actor: str, note: str | None = None,
                now: float | None = None, edits: Sequence[Edit] = ()) -> ApprovalRow:
        now = self.store.now() if now is None else now
        with self.store.transaction() as tx:
            approval = _open(tx, approval_id)
            self.approve_in(tx, approval, actor, note, now, edits)
        return approval

    def approve_in(self, tx: Transaction, approval: ApprovalRow, actor: str,
                   note: str | None, now: float, edits: Sequence[Edit] = ()) -> None:
        pk = _step(tx, approval)
        if edits:
            if approval.reason != "gate":
                raise InvalidState(f"approval {approval.id} is not a gate before intents go "
                                   "out; only those can be edited")
            run = tx.runs.get(approval.run_id)
            assert run is not None
            _apply_edits(tx, approval, edits, actor, note, now,
                         self.registry.playbook(run.playbook, run.playbook_version))
        _record(tx, approval, "approved", actor, note, now)
        if approval.reason == compensation.REASON:
            self._retry_compensation(tx, approval, pk, actor, note, now)
            return
        tx.intents.set_status(approval.run_id, approval.step_id, IntentStatus.PENDING,
                              expect=[IntentStatus.STAGED])
        # The output is recorded: the claim resumes at dispatch, not at execution.
        tx.steps.set_state(pk, S.READY, expect=[S.AWAITING_APPROVAL], resume=Resume.DISPATCH,
                           available_at=now)
        _move(tx, approval, S.READY, actor, now, resume=Resume.DISPATCH.value)
        tx.notify_ready()

    def reject(self, approval_id: str, actor: str, reason: str,
               now: float | None = None) -> ApprovalRow:
        now = self.store.now() if now is None else now
        with self.store.transaction() as tx:
            approval = _open(tx, approval_id)
            self.reject_in(tx, approval, actor, reason, now)
        return approval

    def reject_in(self, tx: Transaction, approval: ApprovalRow, actor: str, reason: str,
                  now: float) -> None:
        pk = _step(tx, approval)
        _record(tx, approval, "rejected", actor, reason, now)
        if approval.reason == compensation.REASON:
            tx.steps.set_state(pk, S.FAILED, expect=[S.AWAITING_APPROVAL],
                               error=f"given up by {actor}: {reason}", finished_at=now)
            _move(tx, approval, S.FAILED, actor, now, error=f"given up: {reason}")
            compensation.decided(tx, approval, "give_up", actor, reason, now)
            compensation.advance(tx, approval.run_id, now)
            return
        tx.intents.set_status(approval.run_id, approval.step_id, IntentStatus.REJECTED,
                              expect=[IntentStatus.STAGED])
        tx.steps.set_state(pk, S.FAILED, expect=[S.AWAITING_APPROVAL],
                           error=f"rejected by {actor}: {reason}", finished_at=now)
        _move(tx, approval, S.FAILED, actor, now, error=f"rejected: {reason}")
        run = tx.runs.get(approval.run_id)
        assert run is not None
        playbook = self.registry.playbook(run.playbook, run.playbook_version)
        runs.end_run(tx, approval.run_id, playbook, final_state=RunState.FAILED,
                     error=f"step {approval.step_id} rejected by {actor}: {reason}",
                     actor=actor, now=now)

    def retry(self, approval_id: str, actor: str, guidance: str,
              now: float | None = None) -> ApprovalRow:
        now = self.store.now() if now is None else now
        with self.store.transaction() as tx:
            approval = _open(tx, approval_id)
            if approval.reason == UNCONFIRMED:
                raise InvalidState(
                    f"approval {approval_id} asks whether a send that was cut short arrived: "
                    f"`soloist approve {approval_id}` sends it again, `soloist resolve "
                    f"{approval_id} --note ...` records it as sent, `soloist reject "
                    f"{approval_id} --reason ...` gives up")
            pk = _step(tx, approval)
            _record(tx, approval, "retry", actor, guidance, now)
            if approval.reason == compensation.REASON:
                self._retry_compensation(tx, approval, pk, actor, guidance, now)
                return approval
            tx.intents.set_status(approval.run_id, approval.step_id, IntentStatus.DISCARDED,
                                  expect=[IntentStatus.STAGED])
            step = tx.steps.get(approval.run_id, approval.step_id)
            assert step is not None
            tx.steps.set_state(pk, S.READY, expect=[S.AWAITING_APPROVAL], resume=Resume.EXECUTE,
                               attempt=step.attempt + 1, available_at=now, guidance=guidance)
            _move(tx, approval, S.READY, actor, now, guidance=guidance)
            tx.notify_ready()
        return approval

    def resolve(self, approval_id: str, actor: str, note: str,
                now: float | None = None) -> ApprovalRow:
        """A person did it themself, or saw it done: a failed compensation undone by hand,
        or a send whose outcome was unknown that arrived. Record it, and let the run go on."""
        now = self.store.now() if now is None else now
        with self.store.transaction() as tx:
            approval = _open(tx, approval_id)
            if approval.reason == UNCONFIRMED:
                self._mark_done(tx, approval, actor, note, now)
                return approval
            if approval.reason != compensation.REASON:
                raise InvalidState(
                    f"approval {approval_id} is not a failed compensation nor an unconfirmed "
                    "send; resolve is for those. Use approve, reject or retry.")
            pk = _step(tx, approval)
            _record(tx, approval, "resolved", actor, note, now)
            tx.steps.set_state(pk, S.PERSISTING, expect=[S.AWAITING_APPROVAL])
            tx.steps.set_state(pk, S.DONE, expect=[S.PERSISTING], finished_at=now)
            tx.events.append(NewEvent("step.transition", {
                "from": S.AWAITING_APPROVAL.value, "to": S.DONE.value,
                "path": [S.AWAITING_APPROVAL.value, S.PERSISTING.value, S.DONE.value],
                "by_hand": True}, run_id=approval.run_id, step_id=approval.step_id,
                actor=actor, ts=now))
            original = compensation.original_of(approval.step_id)
            orig = tx.steps.get(approval.run_id, original)
            if orig is not None and tx.steps.set_state(orig.id, S.COMPENSATED, expect=[S.DONE]):
                tx.events.append(NewEvent("step.transition", {
                    "from": "done", "to": "compensated", "by_hand": True},
                    run_id=approval.run_id, step_id=original, actor=actor, ts=now))
            compensation.decided(tx, approval, "done_by_hand", actor, note, now)
            compensation.advance(tx, approval.run_id, now)
        return approval

    @staticmethod
    def _mark_done(tx: Transaction, approval: ApprovalRow, actor: str, note: str,
                   now: float) -> None:
        """An unconfirmed intent was done after all (the person saw the email arrive):
        recorded as dispatched, never sent again; the step's other intents go on."""
        pk = _step(tx, approval)
        _record(tx, approval, "resolved", actor, note, now)
        for intent in tx.intents.for_step(approval.run_id, approval.step_id):
            if intent.status == IntentStatus.STAGED:
                result = {"confirmed_by": actor, "note": note}
                tx.intents.record_result(intent.idempotency_key, IntentStatus.DISPATCHED,
                                         result, None, now)
                tx.events.append(NewEvent("intent.dispatched", {
                    "key": intent.idempotency_key, "status": IntentStatus.DISPATCHED.value,
                    "result": result, "error": None}, run_id=approval.run_id,
                    step_id=approval.step_id, actor=actor, ts=now))
        tx.steps.set_state(pk, S.READY, expect=[S.AWAITING_APPROVAL], resume=Resume.DISPATCH,
                           available_at=now)
        _move(tx, approval, S.READY, actor, now, resume=Resume.DISPATCH.value, by_hand=True)
        tx.notify_ready()

    @staticmethod
    def _retry_compensation(tx: Transaction, approval: ApprovalRow, pk: int, actor: str,
                            note: str | None, now: float) -> None:
        step = tx.steps.get(approval.run_id, approval.step_id)
        assert step is not None
        tx.steps.set_state(pk, S.READY, expect=[S.AWAITING_APPROVAL],
                           attempt=step.attempt + 1, available_at=now)
        _move(tx, approval, S.READY, actor, now, retry=compensation.REASON)
        compensation.decided(tx, approval, "retry", actor, note, now)
        tx.notify_ready()

    def expire(self, now: float | None = None) -> int:
        """Apply the default decision of every gate whose timeout passed."""
        now = self.store.now() if now is None else now
        count = 0
        with self.store.transaction() as tx:
            for approval in tx.approvals.expired(now):
                actor = "system:gate-timeout"
                if approval.default_decision == "approve":
                    self.approve_in(tx, approval, actor, "gate timed out", now)
                else:
                    self.reject_in(tx, approval, actor, "gate timed out", now)
                count += 1
        return count
