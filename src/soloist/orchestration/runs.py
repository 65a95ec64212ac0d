"""Starting, finishing, failing and cancelling runs: the run-level half of the lifecycle.

Every function here works inside a transaction it is given, so a caller can start a run
and record why in one commit (a trigger, a person, an event).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jsonschema

from soloist.control.playbooks import PRIORITY_MAX, PRIORITY_MIN, Playbook
from soloist.errors import InputError
from soloist.jsonvalues import check_finite
from soloist.orchestration import compensation
from soloist.orchestration.lifecycle import RunState, StepState, TaskKind, check_run_move
from soloist.store.base import NewEvent, NewStep, RunRow, Transaction


def new_id(prefix: str) -> str:
    """A short id that sorts by creation time: ``r-<ms in hex>-<random>``."""
    return f"{prefix}-{int(time.time() * 1000):x}-{secrets.token_hex(3)}"


def validate_priority(priority: int) -> None:
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InputError(f"priority {priority} is out of range; give a whole number from "
                         f"{PRIORITY_MIN} to {PRIORITY_MAX}")


def validate_inputs(playbook: Playbook, inputs: Any) -> None:
    # A schema's `type: number` takes NaN and infinity, and `inf > 0` passes a check.
    check_finite(inputs, f"the input for playbook {playbook.name!r}")
    try:
        jsonschema.validate(inputs, playbook.inputs)
    except jsonschema.ValidationError as exc:
        path = [str(p) for p in exc.absolute_path]
        where = "/".join(path) or "the input"
        required = exc.validator_value
        if exc.validator == "required" and isinstance(exc.instance, dict) and isinstance(
                required, list):
            missing = [k for k in required if k not in exc.instance]
            path += missing[:1]
        raise InputError(
            f"input for playbook {playbook.name!r} is invalid at {where}: {exc.message}",
            field=".".join(["inputs", *path]),
        ) from exc


@dataclass(frozen=True, slots=True)
class StartRequest:
    playbook: Playbook
    inputs: dict[str, Any]
    trigger: dict[str, Any]
    actor: str
    priority: int | None = None
    pins: dict[str, Any] | None = None  # versions of agents (and policies) to keep


def start_run(tx: Transaction, request: StartRequest, now: float | None = None) -> str:
    """Insert a run of a deployed playbook (its version pinned) with its steps."""
    playbook = request.playbook
    assert playbook.version is not None, "only deployed playbooks run"
    now = tx.now() if now is None else now
    validate_inputs(playbook, request.inputs)
    priority = playbook.priority if request.priority is None else request.priority
    validate_priority(priority)
    run_id = new_id("r")
    deadline = playbook.budget.deadline
    tx.runs.insert(RunRow(
        id=run_id, playbook=playbook.name, playbook_version=playbook.version,
        state=RunState.RUNNING, inputs=request.inputs, queue=playbook.queue, priority=priority,
        created_at=now, deadline_at=None if deadline is None else now + deadline,
        finished_at=None, trigger=request.trigger, error=None,
        steps_remaining=len(playbook.steps), created_by=request.actor, pins=request.pins,
    ))
    steps: list[NewStep] = []
    for position, (step, needs) in enumerate(zip(playbook.steps, playbook.needs_of(),
                                                 strict=True)):
        state = StepState.READY if not needs else StepState.SCHEDULED
        steps.append(NewStep(run_id, step.id, position, TaskKind.STEP, playbook.name,
                             playbook.version, playbook.queue, priority, state, len(needs),
                             now, now))
    tx.steps.insert_many(steps)
    tx.events.append(NewEvent("run.created", {
        "playbook": playbook.name, "version": playbook.version, "inputs": request.inputs,
        "trigger": request.trigger,
        "ready": [s.step_id for s in steps if s.state == StepState.READY],
    }, run_id=run_id, actor=request.actor, ts=now))
    tx.notify_ready()
    return run_id


def finish_run(tx: Transaction, run_id: str, playbook: str, inputs: Any, now: float) -> None:
    """All steps are done or skipped: the run is done, and says so on the bus."""
    check_run_move(RunState.RUNNING, RunState.DONE)
    if not tx.runs.set_state(run_id, RunState.DONE, expect=[RunState.RUNNING],
                             finished_at=now):
        return
    topic = f"run.completed.{playbook}"
    tx.bus.publish(topic, {"run_id": run_id, "playbook": playbook, "inputs": inputs},
                   run_id, now)
    tx.events.append(NewEvent("run.done", {"published": topic}, run_id=run_id, ts=now))


def publish(tx: Transaction, topic: str, payload: Any, run_id: str | None, now: float) -> None:
    tx.bus.publish(topic, payload, run_id, now)
    tx.events.append(NewEvent("bus.published", {"topic": topic, "payload": payload},
                              run_id=run_id, ts=now))


def end_run(
    tx: Transaction,
    run_id: str,
    playbook: Playbook,
    *,
    final_state: RunState,
    error: str,
    actor: str,
    now: float,
) -> bool:
    """Stop a running run: cancel what is open, then compensate what was dispatched.

    Returns false if the run was not running (already ending or ended).
    """
    run = tx.runs.get(run_id)
    if run is None or run.state != RunState.RUNNING:
        return False
    for step_id, old in tx.steps.cancel_open(run_id, now):
        tx.events.append(NewEvent("step.transition", {"from": old, "to": "cancelled"},
                                  run_id=run_id, step_id=step_id, actor=actor, ts=now))
    tx.approvals.close_for_run(run_id, "cancelled", actor, now)
    to_undo = compensation.plan(
        tx.steps.for_run(run_id), tx.intents.for_run(run_id),
        {step.id for step in playbook.steps if step.compensate is not None})
    check_run_move(RunState.RUNNING, final_state if not to_undo else RunState.COMPENSATING)
    if not to_undo:
        tx.runs.set_state(run_id, final_state, expect=[RunState.RUNNING], error=error,
                          finished_at=now)
        tx.events.append(NewEvent(f"run.{final_state.value}", {"error": error},
                                  run_id=run_id, actor=actor, ts=now))
        return True
    tx.runs.set_state(run_id, RunState.COMPENSATING, expect=[RunState.RUNNING], error=error,
                      final_state=final_state)
    tx.events.append(NewEvent("run.compensating",
                              {"error": error, "undo": to_undo, "then": final_state.value},
                              run_id=run_id, actor=actor, ts=now))
    tx.steps.insert_many(compensation.new_steps(run, playbook, to_undo, now))
    tx.notify_ready()
    return True
