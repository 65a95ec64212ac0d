"""Step and run states, and the table of legal moves between them."""

from __future__ import annotations

import itertools
from enum import StrEnum

from soloist.errors import IllegalTransition


class StepState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for the steps it needs
    READY = "ready"  # claimable once ``available_at`` has passed
    CLAIMED = "claimed"
    EXECUTING = "executing"
    CHECKING = "checking"
    AWAITING_APPROVAL = "awaiting_approval"
    PERSISTING = "persisting"  # output recorded, intents being dispatched
    DONE = "done"
    SKIPPED = "skipped"  # its ``when`` was false
    FAILED = "failed"
    CANCELLED = "cancelled"
    COMPENSATED = "compensated"  # done, then undone by its compensating action


class RunState(StrEnum):
    RUNNING = "running"
    COMPENSATING = "compensating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = StepState

STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    S.SCHEDULED: frozenset({S.READY, S.CANCELLED}),
    S.READY: frozenset({S.CLAIMED, S.CANCELLED}),
    # A claim that resumes after the output was recorded goes straight to persisting.
    S.CLAIMED: frozenset({S.EXECUTING, S.PERSISTING, S.READY, S.CANCELLED}),
    S.EXECUTING: frozenset(
        {S.CHECKING, S.SKIPPED, S.READY, S.FAILED, S.AWAITING_APPROVAL, S.CANCELLED}
    ),
    S.CHECKING: frozenset({S.PERSISTING, S.AWAITING_APPROVAL, S.READY, S.FAILED, S.CANCELLED}),
    # Straight to persisting only when a person did the work by hand (a compensation
    # resolved by hand): there is nothing left to dispatch, only the record to write.
    S.AWAITING_APPROVAL: frozenset({S.READY, S.PERSISTING, S.FAILED, S.CANCELLED}),
    S.PERSISTING: frozenset({S.DONE, S.READY, S.FAILED, S.CANCELLED}),
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
