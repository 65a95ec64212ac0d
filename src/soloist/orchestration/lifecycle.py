"""Step and run states, the table of legal moves between them, and how a move is logged.

The other names a step row carries (its kind, where a claim resumes it, its intents'
statuses) are string enums too: they compare equal to the strings the store keeps, so the
stored values are the same as ever.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

from soloist.errors import IllegalTransition
from soloist.store.base import NewEvent, StepRow, StepUpdate, Transaction


class StepState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for the steps it needs
    READY = "ready"  # claimable once ``available_at`` has passed
    CLAIMED = "claimed"
    EXECUTING = "executing"
    CHECKING = "checking"
    AWAITING_APPROVAL = "awaiting_approval"
    WAITING = "waiting"  # a wait step: for an event or a time (soloist.store.waits)
    PERSISTING = "persisting"  # output recorded, intents being dispatched
    DONE = "done"
    SKIPPED = "skipped"  # its ``when`` was false
    FAILED = "failed"
    CANCELLED = "cancelled"
    COMPENSATED = "compensated"  # done, then undone by its compensating action


class TaskKind(StrEnum):
    """What a step row is: a step of the playbook, or the undo of one."""

    STEP = "step"
    COMPENSATION = "compensation"


class Resume(StrEnum):
    """What the next claim of a step does."""

    EXECUTE = "execute"
    DISPATCH = "dispatch"  # the output is recorded: only its intents are left to do


class IntentStatus(StrEnum):
    STAGED = "staged"  # waiting for a person at the step's gate
    PENDING = "pending"  # to be dispatched
    #: being sent where nothing can deduplicate (SMTP after DATA began): a dispatch that
    #: finds it so proves the outcome, or asks a person, before it acts again
    TRANSMITTING = "transmitting"
    DISPATCHED = "dispatched"
    FAILED = "failed"
    REJECTED = "rejected"  # a person said no at the gate
    DISCARDED = "discarded"  # a person sent the step back: it stages anew


#: Why a dispatch asks a person: an intent's outcome could not be proven (gates.py).
UNCONFIRMED = "unconfirmed"

#: What a dispatch still has to do (a restore may rewind a dispatched intent to these).
UNDISPATCHED = frozenset({IntentStatus.PENDING, IntentStatus.STAGED,
                          IntentStatus.TRANSMITTING})


class RunState(StrEnum):
    RUNNING = "running"
    COMPENSATING = "compensating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = StepState

STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    S.SCHEDULED: frozenset({S.READY, S.CANCELLED, S.SKIPPED}),
    S.READY: frozenset({S.CLAIMED, S.CANCELLED, S.SKIPPED}),
    # A claim that resumes after the output was recorded goes straight to persisting.
    S.CLAIMED: frozenset({S.EXECUTING, S.PERSISTING, S.READY, S.CANCELLED}),
    S.EXECUTING: frozenset(
        {S.CHECKING, S.SKIPPED, S.READY, S.FAILED, S.AWAITING_APPROVAL, S.CANCELLED,
         S.WAITING}
    ),
    # Woken by its event or its deadline; a stopped run skips it.
    S.WAITING: frozenset({S.READY, S.CANCELLED, S.SKIPPED}),
    S.CHECKING: frozenset({S.PERSISTING, S.AWAITING_APPROVAL, S.READY, S.FAILED, S.CANCELLED}),
    # Straight to persisting only when a person did the work by hand (a compensation
    # resolved by hand): there is nothing left to dispatch, only the record to write.
    S.AWAITING_APPROVAL: frozenset({S.READY, S.PERSISTING, S.FAILED, S.CANCELLED, S.SKIPPED}),
    # A dispatch whose outcome nothing can prove asks a person (an unconfirmed send).
    S.PERSISTING: frozenset({S.DONE, S.READY, S.FAILED, S.CANCELLED, S.AWAITING_APPROVAL}),
    S.DONE: frozenset({S.COMPENSATED}),
    S.SKIPPED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.COMPENSATED: frozenset(),
}

TERMINAL_STEP_STATES = frozenset({S.DONE, S.SKIPPED, S.FAILED, S.CANCELLED, S.COMPENSATED})

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.RUNNING: frozenset(
        {RunState.DONE, RunState.FAILED, RunState.CANCELLED, RunState.COMPENSATING}
    ),
    RunState.COMPENSATING: frozenset({RunState.FAILED, RunState.CANCELLED}),
    RunState.DONE: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}
TERMINAL_RUN_STATES = frozenset({RunState.DONE, RunState.FAILED, RunState.CANCELLED})


def check_step_move(old: StepState | str, new: StepState | str) -> None:
    """Raise :class:`IllegalTransition` unless a step may move from ``old`` to ``new``."""
    # StepState is a StrEnum: plain strings look up the same entries, with no conversion
    # on this hot path.
    allowed = STEP_TRANSITIONS.get(old)  # type: ignore[arg-type]
    if allowed is None or new not in allowed:
        raise IllegalTransition(f"a step cannot move from {old} to {new}")


def check_run_move(old: RunState | str, new: RunState | str) -> None:
    """Raise :class:`IllegalTransition` unless a run may move from ``old`` to ``new``."""
    if RunState(new) not in RUN_TRANSITIONS[RunState(old)]:
        raise IllegalTransition(f"a run cannot move from {old} to {new}")


def path(*states: StepState) -> list[tuple[StepState, StepState]]:
    """The moves along a path of states, each checked against the table."""
    moves = list(itertools.pairwise(states))
    for old, new in moves:
        check_step_move(old, new)
    return moves


def log_moves(tx: Transaction, row: StepRow, *states: StepState, ts: float,
              actor: str, data: dict[str, Any] | None = None) -> None:
    """One event for a path of moves made at one persistence point.

    Each move is checked against the transition table; the event names the first and
    last state and, when the step passed through others, the whole ``path``.
    """
    path(*states)
    payload: dict[str, Any] = {"from": states[0].value, "to": states[-1].value,
                               "attempt": row.attempt}
    if len(states) > 2:
        payload["path"] = [state.value for state in states]
    if data:
        payload.update(data)
    tx.events.append(NewEvent("step.transition", payload, run_id=row.run_id,
                              step_id=row.step_id, actor=actor, ts=ts))


def fenced(tx: Transaction, update: StepUpdate) -> bool:
    """Write one step update unless another claim took the step since (its token moved)."""
    return not tx.steps.update_fenced([update])
