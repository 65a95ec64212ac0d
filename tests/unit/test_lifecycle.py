from __future__ import annotations

import pytest

from soloist.errors import IllegalTransition
from soloist.orchestration.lifecycle import (
    STEP_TRANSITIONS,
    TERMINAL_STEP_STATES,
    RunState,
    StepState,
    check_run_move,
    check_step_move,
    path,
)

S = StepState


def test_the_happy_path_is_legal() -> None:
    moves = path(S.SCHEDULED, S.READY, S.CLAIMED, S.EXECUTING, S.CHECKING,
                 S.AWAITING_APPROVAL, S.READY, S.CLAIMED, S.PERSISTING, S.DONE)
    assert len(moves) == 9


@pytest.mark.parametrize(("old", "new"), [
    (S.SCHEDULED, S.EXECUTING),  # must be claimed first
    (S.READY, S.DONE),
    (S.EXECUTING, S.DONE),  # a step is checked before it is done
    (S.DONE, S.READY),
    (S.FAILED, S.READY),
    (S.CANCELLED, S.READY),
    (S.AWAITING_APPROVAL, S.DONE),  # approval leads to dispatch, not straight to done
])
def test_illegal_moves_are_refused(old: StepState, new: StepState) -> None:
    with pytest.raises(IllegalTransition, match=f"from {old} to {new}"):
        check_step_move(old, new)


def test_terminal_states_only_allow_compensation() -> None:
    for state in TERMINAL_STEP_STATES:
        allowed = STEP_TRANSITIONS[state]
        assert allowed <= {S.COMPENSATED}, state


def test_every_state_is_in_the_table() -> None:
    assert set(STEP_TRANSITIONS) == set(StepState)


def test_lease_loss_returns_to_ready_from_every_leased_state() -> None:
    for state in (S.CLAIMED, S.EXECUTING, S.CHECKING, S.PERSISTING):
        check_step_move(state, S.READY)


def test_run_moves() -> None:
    check_run_move(RunState.RUNNING, RunState.COMPENSATING)
    check_run_move(RunState.COMPENSATING, RunState.CANCELLED)
    with pytest.raises(IllegalTransition):
        check_run_move(RunState.DONE, RunState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_run_move(RunState.COMPENSATING, RunState.DONE)
