"""The poison decision, with no database: when a step whose lease keeps expiring fails."""

from __future__ import annotations

import pytest

from soloist.control.playbooks import RetryPolicy
from soloist.orchestration.leases import poison_error
from soloist.orchestration.lifecycle import StepState, TaskKind
from soloist.store.base import StepRow


def expired(state: str = StepState.EXECUTING, kind: str = TaskKind.STEP,
            attempt: int = 3) -> StepRow:
    """A step whose lease (held by worker w1) expired."""
    return StepRow(
        id=1, run_id="r", step_id="s", position=0, kind=kind, playbook="p",
        playbook_version=1, queue="default", priority=0, state=state, resume="execute",
        attempt=attempt, pending_needs=0, available_at=0.0, lease_owner="w1",
        lease_expires=1.0, lease_token=4, output=None, error=None, guidance=None,
        created_at=0.0, started_at=0.0, finished_at=None)


def test_a_step_with_attempts_left_runs_again() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert poison_error(expired(attempt=1), policy, 1) is None
    assert poison_error(expired(attempt=2), policy, 2) is None


def test_a_step_whose_worker_died_on_its_last_attempt_is_poison() -> None:
    error = poison_error(expired(attempt=3), RetryPolicy(max_attempts=3), 3)
    assert error == ("PoisonStep: the lease of w1 expired during attempt 3 of 3: the worker "
                     "running this step stopped or died each time, and the step may be what "
                     "kills it")
    assert poison_error(expired(attempt=1), RetryPolicy(max_attempts=1), 1) is not None


@pytest.mark.parametrize("state", [StepState.PERSISTING, StepState.CLAIMED,
                                   StepState.CHECKING])
def test_only_an_executing_step_can_be_poison(state: str) -> None:
    # One that was dispatching resumes its dispatch, which replays what was done.
    assert poison_error(expired(state=state, attempt=9), RetryPolicy(max_attempts=3), 9) is None


def test_a_compensation_counts_its_attempts_since_a_person_sent_it_back() -> None:
    row = expired(kind=TaskKind.COMPENSATION, attempt=12)
    # Attempt 12 of the row, but the second since a person asked for a retry at attempt 10.
    assert poison_error(row, RetryPolicy(), 2) is None
    error = poison_error(row, RetryPolicy(), 3)
    assert error == ("PoisonStep: the lease of w1 expired during attempt 3: the workers "
                     "running this compensation stopped or died each time")


def test_rows_of_another_kind_are_never_poison() -> None:
    assert poison_error(expired(kind="other", attempt=9), RetryPolicy(max_attempts=1), 9) is None
