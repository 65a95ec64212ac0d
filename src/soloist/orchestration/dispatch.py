"""Dispatch: call each intent a persisting step staged, once, under its idempotency key.

Runs in an executor thread and only reads the store; what happened comes back as a
:class:`Dispatched` that the worker's loop records (see ``outcomes.apply_dispatched``).
A retry replays what was recorded, in the store or in the dispatch ledger that survives
a snapshot restore, instead of acting twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from soloist.control.playbooks import RetryPolicy, StepKind
from soloist.control.retry import decide, wait_of
from soloist.errors import SoloistError, classify, describe
from soloist.execution.context import ToolCall
from soloist.execution.steps import Outcome, Status, StepJob, StepRunner
from soloist.orchestration.lifecycle import UNDISPATCHED, IntentStatus, TaskKind
from soloist.store.base import IntentRow, Store

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntentResult:
    """What dispatching one intent came to, as the store records it."""

    key: str  # the intent's idempotency key
    status: IntentStatus  # dispatched or failed
    result: Any = None
    error: str | None = None
    undo: Any = None  # how to undo it ({"tool", "args"}), when its tool declares how


@dataclass(slots=True)
class Dispatched:
    """The result of dispatching a persisting step's intents (or of a compensation)."""

    job: StepJob
    results: list[IntentResult] = field(default_factory=list)
    output: Any = None
    failure: Outcome | None = None  # retry, gate or failed, when a dispatch failed
    #: the intent a failure stopped at: the one a person is asked about, at a gate
    stopped_at: str | None = None


def actor_of(job: StepJob) -> str:
    """Whose effect a dispatch is: the agent (at its pinned version) or the playbook."""
    row = job.row
    step = job.playbook.step(row.step_id) if row.kind == TaskKind.STEP else None
    if step is not None and step.agent is not None:
        pinned = job.run.agent_version(step.agent)
        return f"agent:{step.agent}@v{pinned}" if pinned else f"agent:{step.agent}"
    return f"playbook:{row.playbook}@v{row.playbook_version}"


class Dispatcher:
    def __init__(self, store: Store, runner: StepRunner) -> None:
        self.store = store
        self.runner = runner

    def dispatch(self, job: StepJob) -> Dispatched:
        """Call each pending intent's tool with its key; replay what was recorded."""
        row = job.row
        with self.store.read() as tx:
            intents = tx.intents.for_step(row.run_id, row.step_id)
            current = tx.steps.get(row.run_id, row.step_id)
            # What was dispatched even if the store no longer says so (a restore rewound it).
            kept = tx.ledger.dispatched([i.idempotency_key for i in intents
                                         if i.status in UNDISPATCHED])
        output = current.output if current is not None else None
        done = Dispatched(job, output=output)
        refused = self._inadmissible(intents)
        if refused is not None:
            # One bad intent stops them all before anything acts: a step never half-acts
            # because of arguments that could be known to fail.
            key, message = refused
            done.results.append(IntentResult(key, IntentStatus.FAILED, error=message))
            done.failure = Outcome(job, "failed", error=message)
            return done
        actor = actor_of(job)
        results: list[Any] = []
        for intent in intents:
            if intent.status == IntentStatus.DISPATCHED:
                results.append(intent.result)
                continue
            if intent.status not in UNDISPATCHED:
                continue
            replay = kept.get(intent.idempotency_key)
            if replay is not None:  # done once already: its recorded result, never twice
                done.results.append(self._dispatched(intent, replay.result))
                results.append(replay.result)
                continue
            call = ToolCall(row.run_id, row.step_id, intent.idempotency_key,
                            self.runner.workspace, actor, intent.status)
            try:
                result = self.runner.dispatch(intent.tool, intent.args, call)
            except Exception as exc:
                done.failure = self._failure(job, exc)
                done.stopped_at = intent.idempotency_key
                if done.failure.status == "failed":
                    done.results.append(IntentResult(intent.idempotency_key,
                                                     IntentStatus.FAILED,
                                                     error=done.failure.error))
                return done
            done.results.append(self._dispatched(intent, result))
            results.append(result)
        if (done.output is None and results
                and job.playbook.step(row.step_id).kind == StepKind.TOOL):
            done.output = results[0] if len(results) == 1 else results
        return done

    @staticmethod
    def _failure(job: StepJob, exc: Exception) -> Outcome:
        """A failed call: a wait that is nobody's failure (a limit, an open breaker), a
        question for a person (an outcome nothing can prove), retried with the step's
        policy, or the step fails."""
        row = job.row
        kind = classify(exc)
        wait = wait_of(exc)
        if wait is not None:
            return Outcome(job, "retry", error=describe(exc), kind=kind, same_attempt=True,
                           delay=wait)
        if kind == "semantic" and row.kind == TaskKind.STEP:
            return Outcome(job, "gate", error=describe(exc), kind=kind,
                           gate_message=describe(exc))
        policy = job.playbook.step(row.step_id).retry if row.kind == TaskKind.STEP \
            else RetryPolicy()
        decision = decide(policy, "deterministic" if kind == "semantic" else kind,
                          row.attempt, getattr(exc, "retry_after", None))
        status: Status = "retry" if decision.action == "retry" else "failed"
        return Outcome(job, status, error=describe(exc), delay=decision.delay, kind=kind)

    def _dispatched(self, intent: IntentRow, result: Any) -> IntentResult:
        return IntentResult(intent.idempotency_key, IntentStatus.DISPATCHED, result,
                            undo=self._undo_of(intent.tool, intent.args, result))

    def _inadmissible(self, intents: list[IntentRow]) -> tuple[str, str] | None:
        """The first intent still to dispatch that its tool would refuse, and why."""
        for intent in intents:
            if intent.status not in UNDISPATCHED:
                continue
            try:
                self.runner.admit_intent(intent.tool, intent.args)
            except SoloistError as exc:
                return intent.idempotency_key, describe(exc)
        return None

    def _undo_of(self, tool: str, args: dict[str, Any], result: Any) -> Any:
        """How to undo this dispatched call, if its tool declares a compensation."""
        spec = self.runner.tools.tools.get(tool)
        if spec is None or spec.compensate is None:
            return None
        try:
            return {"tool": spec.compensate.tool,
                    "args": spec.compensate.arguments(args, result)}
        except Exception:
            _log.warning("cannot derive the compensation of %s from its result", tool)
            return None
