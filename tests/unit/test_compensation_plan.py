"""What a saga undoes and in which order, with no database."""

from __future__ import annotations

from typing import Any

from soloist.control.loader import load_playbook_text
from soloist.orchestration import compensation
from soloist.orchestration.lifecycle import IntentStatus, StepState, TaskKind
from soloist.store.base import IntentRow, RunRow, StepRow

UNDO = {"tool": "file.unappend", "args": {"path": "f", "line": "x"}}


def step(step_id: str, state: str = StepState.DONE, finished_at: float | None = 1.0,
         position: int = 0, kind: str = TaskKind.STEP) -> StepRow:
    return StepRow(
        id=position, run_id="r", step_id=step_id, position=position, kind=kind,
        playbook="p", playbook_version=1, queue="default", priority=0, state=state,
        resume="execute", attempt=1, pending_needs=0, available_at=0.0, lease_owner=None,
        lease_expires=None, lease_token=0, output=None, error=None, guidance=None,
        created_at=0.0, started_at=0.0, finished_at=finished_at)


def intent(step_id: str, idx: int = 0, status: str = IntentStatus.DISPATCHED,
           undo: Any = None) -> IntentRow:
    return IntentRow("r", step_id, idx, f"r/{step_id}/{idx}", "file.append", {}, "", status,
                     {"n": idx}, None, 0.0, 1.0 if status == "dispatched" else None, undo)


def test_the_id_of_a_compensation_names_the_step_it_undoes() -> None:
    assert compensation.step_id("charge") == "compensate:charge"
    assert compensation.original_of(compensation.step_id("charge")) == "charge"
    # A step id that looks like a prefix is kept whole.
    assert compensation.original_of(compensation.step_id("compensate:x")) == "compensate:x"


def test_declared_steps_that_finished_are_undone_newest_first() -> None:
    steps = [step("a", finished_at=1.0, position=0), step("b", finished_at=3.0, position=1),
             step("c", finished_at=2.0, position=2)]
    assert compensation.plan(steps, [], {"a", "b", "c"}) == ["b", "c", "a"]
    assert compensation.plan(steps, [], {"a", "c"}) == ["c", "a"]  # b declares no undo


def test_steps_finished_at_the_same_instant_are_undone_in_reverse_position() -> None:
    steps = [step("a", position=0), step("b", position=1)]
    assert compensation.plan(steps, [], {"a", "b"}) == ["b", "a"]


def test_a_step_that_did_not_finish_is_undone_only_if_it_acted() -> None:
    steps = [step("a", position=0),
             step("b", StepState.PERSISTING, None, 1),  # one intent of two went out
             step("c", StepState.FAILED, None, 2),
             step("d", StepState.AWAITING_APPROVAL, None, 3)]
    intents = [intent("b", 0), intent("b", 1, IntentStatus.PENDING),
               intent("d", 0, IntentStatus.STAGED)]
    assert compensation.plan(steps, intents, {"a", "b", "c", "d"}) == ["a", "b"]


def test_dispatched_intents_whose_tools_can_undo_them_need_no_declaration() -> None:
    steps = [step("agent", position=0), step("plain", position=1)]
    intents = [intent("agent", 0, undo=UNDO), intent("plain", 0)]
    assert compensation.plan(steps, intents, set()) == ["agent"]
    failed = [intent("agent", 0, IntentStatus.FAILED, undo=UNDO)]
    assert compensation.plan(steps, failed, set()) == []


def test_compensation_rows_are_never_planned_again() -> None:
    rows = [step("a"), step("compensate:a", kind=TaskKind.COMPENSATION, position=5)]
    assert compensation.plan(rows, [], {"a", "compensate:a"}) == ["a"]


def test_the_compensations_run_one_after_the_other() -> None:
    playbook = load_playbook_text(
        "name: p\nsteps:\n  - {id: a, tool: note, args: {text: x}}\n"
        "  - {id: b, tool: note, args: {text: y}}\n", "p.yaml")
    run = RunRow("r", "p", 1, "running", {}, "q", 5, 0.0, None, None, {}, None, 0, "person:a")
    rows = compensation.new_steps(run, playbook, ["b", "a"], 9.0)
    assert [(r.step_id, r.kind, r.position, r.state, r.pending_needs) for r in rows] == [
        ("compensate:b", "compensation", 2, "ready", 0),
        ("compensate:a", "compensation", 3, "scheduled", 1),
    ]
    assert {(r.queue, r.priority, r.playbook_version, r.available_at) for r in rows} == {
        ("q", 5, 1, 9.0)}


def test_without_a_declared_action_each_undoable_intent_is_undone_newest_first() -> None:
    intents = [intent("s", 0, undo=UNDO), intent("s", 1),  # its tool cannot undo it
               intent("s", 2, IntentStatus.FAILED, undo=UNDO), intent("s", 3, undo=UNDO)]
    assert [i.idx for i in compensation.tool_undos(intents)] == [3, 0]
    assert compensation.undo_key("r", "compensate:s", "r/s/3") == "r/compensate:s/3"
