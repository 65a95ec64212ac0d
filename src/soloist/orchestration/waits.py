"""Wait steps and runs stopped by an event: the durable half of "until a reply comes".

A ``wait`` step's first execution parks it in ``waiting`` with a row of
``soloist.store.waits``. It ends once: when an event on its topic satisfies its ``when``
(the scheduler routes every bus message to the open waits, and a wait that begins looks
back over the messages published since its run began, so one that came first is not
missed), or when its deadline passes on the workspace's clock. The step is then ready, and
its next execution outputs ``{timed_out, event}``.

A playbook's ``stop_on`` ends a running run as done when its event comes: what has not
begun is skipped, a gate waiting for a person is withdrawn and the intents it held are
discarded, so a follow-up waiting for approval is never sent after the reply that made it
pointless. A step already dispatching finishes (what went out stays out), and the run ends
when it does.

Both ``when`` expressions read ``event`` (topic, payload, run_id, bus_id), ``run`` (id,
playbook, version) and ``inputs``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from soloist.control import templating
from soloist.control.playbooks import Playbook
from soloist.errors import SoloistError
from soloist.execution.steps import Outcome
from soloist.orchestration.lifecycle import (
    IntentStatus,
    RunState,
    StepState,
    fenced,
    log_moves,
)
from soloist.store.base import BusMessage, NewEvent, RunRow, StepUpdate, Transaction
from soloist.store.waits import EVENT, TIMEOUT, WaitRow

S = StepState
#: What a stop discards: the intents of skipped steps that never acted.
_UNSENT = [IntentStatus.STAGED.value, IntentStatus.PENDING.value]


def scope_of(run: RunRow) -> dict[str, Any]:
    """What a ``when`` reads besides the event."""
    return {"run": {"id": run.id, "playbook": run.playbook, "version": run.playbook_version},
            "inputs": run.inputs}


def event_of(message: BusMessage | dict[str, Any]) -> dict[str, Any]:
    if isinstance(message, BusMessage):
        return {"topic": message.topic, "payload": message.payload,
                "run_id": message.run_id, "bus_id": message.id}
    return {"topic": message["topic"], "payload": message["payload"],
            "run_id": message["run_id"], "bus_id": message["id"]}


def matches(topic: str, when: str | None, event: dict[str, Any],
            scope: dict[str, Any]) -> bool:
    """Whether ``event`` is the one awaited; an expression that fails on this event
    (a field it does not have) is a no."""
    if not fnmatch.fnmatchcase(event["topic"], topic):
        return False
    if when is None:
        return True
    try:
        return bool(templating.evaluate(when, {"event": event, **scope}))
    except SoloistError:
        return False


# -- a wait step ------------------------------------------------------------------------


def begin(tx: Transaction, outcome: Outcome, actor: str, now: float) -> bool:
    """A wait step's first execution: record the wait, park the step, and end the wait at
    once if its event came already or its deadline has passed. False if the lease was
    lost (nothing written)."""
    row, job = outcome.job.row, outcome.job
    spec = job.playbook.step(row.step_id).wait
    assert spec is not None
    run = tx.runs.get(row.run_id)
    if run is None:
        return False
    tx.waits.lock()
    clock = now + tx.clock.offset()
    duration = spec.duration
    wait = tx.waits.begin(WaitRow(
        row.run_id, row.step_id, spec.event, spec.when, scope_of(run),
        None if duration is None else clock + duration, now))
    if not fenced(tx, StepUpdate(row.id, row.lease_token, S.WAITING)):
        return False
    log_moves(tx, row, S.EXECUTING, S.WAITING, ts=outcome.checked or now, actor=actor,
              data={"waits_for": wait.topic or "time", "until": wait.deadline})
    if wait.outcome is not None:  # ended before a lost lease made the step run again
        _wake(tx, wait, wait.outcome, wait.event, actor, now, resolve=False)
        return True
    if wait.topic is not None:
        for message in tx.waits.bus_since([wait.topic], run.created_at):
            event = event_of(message)
            if matches(wait.topic, wait.when, event, wait.scope):
                _wake(tx, wait, EVENT, event, actor, now)
                return True
    if wait.deadline is not None and wait.deadline <= clock:
        _wake(tx, wait, TIMEOUT, None, actor, now)
    return True


def route(tx: Transaction, message: BusMessage, waits: list[WaitRow], actor: str,
          now: float) -> int:
    """End the open waits this message is the event of (removed from ``waits``)."""
    event = event_of(message)
    ended = [w for w in waits
             if w.topic is not None and matches(w.topic, w.when, event, w.scope)]
    for wait in ended:
        waits.remove(wait)
        _wake(tx, wait, EVENT, event, actor, now)
    return len(ended)


def wake_due(tx: Transaction, clock: float, actor: str, now: float) -> int:
    """End the waits whose deadline has passed on the workspace's clock."""
    due = tx.waits.due(clock)
    for wait in due:
        _wake(tx, wait, TIMEOUT, None, actor, now)
    return len(due)


def _wake(tx: Transaction, wait: WaitRow, outcome: str, event: dict[str, Any] | None,
          actor: str, now: float, *, resolve: bool = True) -> None:
    if resolve and not tx.waits.resolve(wait.run_id, wait.step_id, outcome, event, now):
        return
    if not tx.waits.wake(wait.run_id, wait.step_id, now):
        return
    data: dict[str, Any] = {"from": S.WAITING.value, "to": S.READY.value, "ended": outcome}
    if event is not None:
        data.update(topic=event["topic"], bus_id=event["bus_id"])
    tx.events.append(NewEvent("step.transition", data, run_id=wait.run_id,
                              step_id=wait.step_id, actor=actor, ts=now))
    tx.notify_ready()


# -- stop_on ----------------------------------------------------------------------------


def stop_runs(tx: Transaction, message: BusMessage, playbooks: Sequence[Playbook],
              actor: str, now: float) -> int:
    """Stop every running run of these playbooks that this message is a stop event of."""
    event = event_of(message)
    stopped = 0
    for playbook in playbooks:
        stops = [s for s in playbook.stop_on if fnmatch.fnmatchcase(message.topic, s.event)]
        if not stops:
            continue
        for run in tx.runs.list(state=RunState.RUNNING.value, playbook=playbook.name,
                                limit=100_000):
            scope = scope_of(run)
            if any(matches(s.event, s.when, event, scope) for s in stops):
                stopped += stop_run(tx, run, event, actor, now)
    return stopped


def stop_run(tx: Transaction, run: RunRow, event: dict[str, Any], actor: str,
             now: float) -> bool:
    """End a running run as done because ``event`` came; false if it was not running."""
    if run.state != RunState.RUNNING:
        return False
    skipped = tx.waits.skip_open(run.id, now)
    for step_id, old in skipped:
        tx.events.append(NewEvent("step.transition", {
            "from": old, "to": S.SKIPPED.value, "stopped_by": event["topic"]},
            run_id=run.id, step_id=step_id, actor=actor, ts=now))
        tx.intents.set_status(run.id, step_id, IntentStatus.DISCARDED.value, expect=_UNSENT)
    withdrawn = tx.approvals.close_for_run(run.id, "withdrawn", actor, now)
    remaining = run.steps_remaining
    if skipped:
        counts = tx.runs.step_finished([run.id] * len(skipped))
        remaining = counts[0][1] if counts else remaining
    tx.events.append(NewEvent("run.stopped", {
        "topic": event["topic"], "bus_id": event["bus_id"],
        "skipped": [step_id for step_id, _ in skipped], "withdrawn": withdrawn,
        "finishing": remaining}, run_id=run.id, actor=actor, ts=now))
    if remaining <= 0 and tx.runs.set_state(run.id, RunState.DONE, expect=[RunState.RUNNING],
                                            finished_at=now):
        topic = f"run.stopped.{run.playbook}"
        tx.bus.publish(topic, {"run_id": run.id, "playbook": run.playbook,
                               "inputs": run.inputs, "stopped_by": event["topic"]},
                       run.id, now)
        tx.events.append(NewEvent("run.done", {"published": topic}, run_id=run.id,
                                  actor=actor, ts=now))
    return True
