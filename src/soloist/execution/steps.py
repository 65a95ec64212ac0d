"""Execute one claimed step and check its result; no storage here.

The worker hands in a :class:`StepJob` and gets back an :class:`Outcome` saying what the
lifecycle should do next: finish, skip, wait at a gate, retry, fail, or dispatch intents.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import jsonschema

from soloist.control import display, templating
from soloist.control import policies as policy
from soloist.control.agents import Agent
from soloist.control.modules import WorkspaceModules
from soloist.control.playbooks import CompensateSpec, Playbook, Step, StepKind
from soloist.control.policies import Policies, ToolRequest
from soloist.control.retry import RetryDecision, decide, wait_of
from soloist.errors import (
    AgentFailed,
    DeterministicError,
    SemanticError,
    SoloistError,
    classify,
    describe,
)
from soloist.execution.agent_loop import AgentStep, Router, run_agent
from soloist.execution.context import Intent, StepContext, ToolCall, idempotency_key
from soloist.execution.llm.guard import Budgets, CallGuard
from soloist.execution.llm.router import Route
from soloist.execution.memory_view import MemoryView, MemoryViews
from soloist.execution.tools.base import Tool, ToolRegistry, import_problem
from soloist.memory.context import WorkingContext
from soloist.store.base import IntentRow, LLMCallRow, NewEvent, StepRow
from soloist.store.waits import TIMEOUT, WaitRow

Status = Literal["done", "dispatch", "skipped", "gate", "retry", "failed", "wait"]
#: (agent, task, run id, playbook, step id) -> what memory adds to the agent's context
ContextBuilder = Callable[[Agent, str, str, str, str], WorkingContext]
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["verdict", "reason"],
    "properties": {"verdict": {"enum": ["pass", "fail"]}, "reason": {"type": "string"}},
}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a claimed step knows of its run, read in the transaction that claimed it."""

    id: str
    playbook: str
    version: int
    attempt: int
    pins: Mapping[str, Any] | None = None  # what the run keeps: agents' versions, policies
    #: Why the step must not run at all (what the run pinned is gone), if it must not.
    refused: str | None = None
    #: A compensation's or a resumed dispatch's view of the intents of the step concerned.
    intents: tuple[IntentRow, ...] = ()
    original_output: Any = None  # a compensation: the output of the step it undoes
    #: A compensation: its attempts since a person last sent it back (its retries count
    #: from there).
    attempts: int | None = None
    wait: WaitRow | None = None  # a wait step: the wait it began, once it has begun one
    clock_offset: float = 0.0  # how far the workspace's clock is ahead (a rehearsal's)

    def agent_version(self, agent: str) -> int | None:
        """The version of an agent this run pinned, if it pinned one."""
        pinned = (self.pins or {}).get("agents", {}).get(agent)
        return int(pinned) if pinned else None

    def template(self) -> dict[str, Any]:
        """What templates see as ``run``."""
        return {"id": self.id, "playbook": self.playbook, "version": self.version,
                "attempt": self.attempt, "pins": self.pins}


@dataclass(slots=True)
class StepJob:
    row: StepRow
    playbook: Playbook
    inputs: dict[str, Any]
    outputs: dict[str, Any]  # step id -> output, for the steps done so far
    run: RunInfo


@dataclass(slots=True)
class Outcome:
    job: StepJob
    status: Status
    output: Any = None
    intents: list[Intent] = field(default_factory=list)
    error: str | None = None
    delay: float = 0.0
    gate_message: str = ""
    emitted: tuple[str, Any] | None = None
    started: float = 0.0
    checked: float = 0.0
    events: list[NewEvent] = field(default_factory=list)  # what an agent did, for the log
    calls: list[LLMCallRow] = field(default_factory=list)  # for the cost ledger
    same_attempt: bool = False  # a wait that is nobody's failure (an open breaker)
    kind: str | None = None  # a failure's kind (transient, deterministic...), for the log


@dataclass(slots=True)
class Produced:
    """What a step's execution produced, before it is checked."""

    output: Any = None
    intents: list[Intent] = field(default_factory=list)
    emitted: tuple[str, Any] | None = None
    events: list[NewEvent] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)  # policy asks a person to look
    calls: list[LLMCallRow] = field(default_factory=list)


def template_context(job: StepJob) -> dict[str, Any]:
    return {
        "inputs": job.inputs,
        "steps": {sid: {"output": out} for sid, out in job.outputs.items()},
        "run": job.run.template(),
    }


def _falls_back(exc: AgentFailed) -> bool:
    """Whether an agent's failure is one its step's fallback may cover: it could not
    produce valid work. A transient failure retries, a budget stop goes to a person, and an
    agent that tried what it may not do (a call refused by policy or by its tool) is not
    quietly replaced: its failure stands for a person to see."""
    if exc.kind != "deterministic":
        return False
    return not any(e.kind == "tool.refused" or (e.kind == "policy.decision"
                                                 and e.data.get("decision") == "deny")
                   for e in exc.events)


def resolve_callable(target: str, modules: WorkspaceModules) -> Callable[..., Any]:
    """The function a ``module:function`` names, from the workspace's folder first."""
    try:
        obj: Any = modules.resolve(target)
    except AttributeError as exc:
        raise DeterministicError(f"cannot find python function {target!r}: {exc}") from exc
    except Exception as exc:  # the workspace's own module does not import
        raise DeterministicError(f"cannot import python function {target!r} "
                                 f"({import_problem(exc)})") from exc
    if not callable(obj):
        raise DeterministicError(f"{target!r} is not callable")
    return obj  # type: ignore[no-any-return]


class StepRunner:
    """Runs every step kind: python, tool, gate, emit, and agent."""

    def __init__(self, tools: ToolRegistry, workspace: str, *,
                 agents: Callable[[str, int | None], Agent] | None = None,
                 router: Router | None = None,
                 policies: Callable[[], Policies] | None = None,
                 guard: CallGuard | None = None,
                 budgets: Callable[[str], Budgets] | None = None,
                 context: ContextBuilder | None = None,
                 modules: WorkspaceModules | None = None,
                 memory: MemoryViews | None = None) -> None:
        self.tools = tools
        self.memory = memory
        self.workspace = workspace
        self.modules = modules or WorkspaceModules(Path(workspace))
        self.agents = agents
        self.router = router
        self.policies = policies or Policies
        self.guard = guard
        self.budgets = budgets
        self.context = context

    def execute(self, job: StepJob) -> Outcome:
        step = job.playbook.step(job.row.step_id)
        started = time.time()
        context = template_context(job)
        produced: Produced | None = None
        try:
            if step.when is not None and not templating.evaluate(step.when, context):
                return Outcome(job, "skipped", started=started, checked=time.time())
            if step.kind == StepKind.WAIT:
                return self._wait(job, started)
            produced = self._run_kind(step, job, context)
            self._check(step, produced.output)
            if step.kind != StepKind.AGENT:  # an agent's calls were each decided as they came
                self._check_intents(job, produced)
        except Exception as exc:
            return self._failure(job, step, exc, started, produced)
        outcome = Outcome(job, "done", output=produced.output, intents=produced.intents,
                          emitted=produced.emitted, started=started, checked=time.time(),
                          events=produced.events, calls=produced.calls)
        if step.gate is not None:
            outcome.status = "gate"
            # The template's own line breaks fold to spaces; any left came from data and
            # are escaped with the approval (see outcomes), so a message is one line.
            outcome.gate_message = str(templating.render(display.fold(step.gate.message),
                                                         context))
        elif produced.approvals:
            outcome.status = "gate"
            outcome.gate_message = "Policy asks a person to approve: " + "; ".join(
                produced.approvals)
        elif produced.intents:
            outcome.status = "dispatch"
        return outcome

    def _run_kind(self, step: Step, job: StepJob, context: dict[str, Any]) -> Produced:
        row = job.row
        reads: list[NewEvent] = []
        ctx = StepContext(row.run_id, row.step_id, row.attempt, job.inputs,
                          context["steps"], row.playbook, row.guidance,
                          admit=self.admit_intent,
                          reader=lambda tool, args: self._read(row, tool, dict(args), reads),
                          memory=self._memory_of(job), workspace=self.workspace,
                          clock_offset=job.run.clock_offset)
        if step.kind == StepKind.GATE:
            return Produced()
        if step.kind == StepKind.AGENT:
            return self._agent(step, job, ctx, context)
        args = templating.render(step.args, context)
        if step.kind == StepKind.EMIT:
            assert step.emit is not None
            return Produced({"topic": step.emit, "payload": args}, emitted=(step.emit, args))
        if step.kind == StepKind.PYTHON:
            assert step.python is not None
            fn = resolve_callable(step.python, self.modules)
            try:
                return Produced(fn(ctx, **args), ctx.intents, events=reads)
            except Exception as exc:
                exc.events = reads  # type: ignore[attr-defined]  # what it read, logged
                raise
        assert step.tool is not None
        spec = self.tools.get(step.tool)
        if spec.effect_for(args) == "write":
            # Bad arguments fail the step now, not after a person approved it.
            ctx.stage(spec.name, spec.validate(args), f"{spec.name} {args}")
            return Produced(None, ctx.intents)
        call = ToolCall(row.run_id, row.step_id, idempotency_key(row.run_id, row.step_id, 0),
                        self.workspace)
        return Produced(spec.invoke(args, call))

    @staticmethod
    def _wait(job: StepJob, started: float) -> Outcome:
        """A wait step's first execution begins the wait (the lifecycle parks the step);
        once the scheduler has ended it, the next one says how."""
        wait = job.run.wait
        if wait is None or wait.outcome is None:
            return Outcome(job, "wait", started=started, checked=time.time())
        output = {"timed_out": wait.outcome == TIMEOUT, "event": wait.event}
        return Outcome(job, "done", output=output, started=started, checked=time.time())

    def _agent(self, step: Step, job: StepJob, ctx: StepContext,
               context: dict[str, Any]) -> Produced:
        if self.agents is None or self.router is None:
            raise DeterministicError("agent steps need a model: configure [llm] in "
                                     "soloist.toml")
        assert step.agent is not None and step.task is not None
        agent = self.agents(step.agent, job.run.agent_version(step.agent))
        budgets = self.budgets(job.row.playbook) if self.budgets else Budgets()
        if job.playbook.budget.cost_usd is not None:
            budgets = replace(budgets, run_usd=job.playbook.budget.cost_usd)
        task = str(templating.render(step.task, context))
        working = (self.context(agent, task, job.row.run_id, job.row.playbook, step.id)
                   if self.context else None)
        fallback = step.fallback
        route: Route | None = None
        try:
            route = self.router.route(agent.model)
        except SoloistError as exc:
            if fallback is None or exc.kind != "deterministic":
                raise
            # A model that is not configured or not installed: the template does the work.
            return self._fallback(step, job, context, agent, budgets, describe(exc), working)
        if fallback is not None:
            name = f"{route.provider.name}:{route.model}"
            if fallback.skips(name):
                return self._fallback(step, job, context, agent, budgets,
                                      f"model {name} is listed in fallback.models", working)
        try:
            result = run_agent(
                AgentStep(agent, task, self.granted_tools(agent, step), step.output,
                          job.row.playbook, job.row.guidance, budgets, working),
                ctx, self.router, self.policies(), self.workspace, self.guard, route=route)
            if fallback is not None and step.output is not None:
                try:
                    jsonschema.validate(result.output, step.output)
                except jsonschema.ValidationError as exc:
                    return self._fallback(
                        step, job, context, agent, budgets,
                        f"agent {agent.name}: output does not match its schema: "
                        f"{exc.message}", working, result.events, result.calls)
        except AgentFailed as exc:
            if fallback is None or not _falls_back(exc):
                raise
            return self._fallback(step, job, context, agent, budgets, exc.message, working,
                                  exc.events, exc.calls)
        produced = Produced(result.output, ctx.intents, events=result.events,
                            approvals=result.approvals, calls=result.calls)
        if step.verifier is not None:
            self._verify(step, job, ctx, result.output, produced, budgets)
        return produced

    def _fallback(self, step: Step, job: StepJob, context: dict[str, Any], agent: Agent,
                  budgets: Budgets, reason: str, working: WorkingContext | None,
                  events: list[NewEvent] | None = None,
                  calls: list[LLMCallRow] | None = None) -> Produced:
        """The step's deterministic fallback does the work the agent could not.

        It runs like a python step, in an outbox of its own (whatever a failed agent staged
        is dropped), and what it stages is put to the policies as a python step's is; the
        failed attempt's events and calls are kept for the log and the cost ledger."""
        assert step.fallback is not None
        row = job.row
        events = list(events or [])
        actor = f"playbook:{row.playbook}@v{job.run.version}"
        events.append(NewEvent("agent.fallback", {
            "agent": f"{agent.name}@v{agent.version}", "reason": reason,
            "fallback": step.fallback.python}, row.run_id, row.step_id, actor, time.time()))
        if working is not None and not any(e.kind == "context.built" for e in events):
            # The agent never saw it; the record says what the fallback was given.
            events.append(NewEvent("context.built", {
                **working.record(), "fallback": step.fallback.python}, row.run_id,
                row.step_id, actor, time.time()))
        produced = Produced(events=events, calls=list(calls or []))
        ctx = StepContext(row.run_id, row.step_id, row.attempt, job.inputs, context["steps"],
                          row.playbook, row.guidance, admit=self.admit_intent,
                          overrides=list(working.overrides) if working is not None else [],
                          reader=lambda tool, args: self._read(row, tool, dict(args),
                                                               produced.events),
                          memory=self._memory_of(job), workspace=self.workspace,
                          clock_offset=job.run.clock_offset)
        try:
            args = templating.render(step.fallback.args, context)
            produced.output = resolve_callable(step.fallback.python, self.modules)(ctx, **args)
            produced.intents = ctx.intents
            self._check_intents(job, produced)
            if step.verifier is not None:
                self._verify(step, job, ctx, produced.output, produced, budgets)
        except Exception as exc:
            # The fallback failed too: what the agent did before, and that the fallback
            # was tried, are logged with the failure (a verdict brings its own trail).
            if not getattr(exc, "events", None):
                try:
                    exc.events = produced.events  # type: ignore[attr-defined]
                    exc.calls = produced.calls  # type: ignore[attr-defined]
                except AttributeError:  # an exception type with no room for them
                    pass
            raise
        return produced

    def _verify(self, step: Step, job: StepJob, ctx: StepContext, output: Any,
                produced: Produced, budgets: Budgets) -> None:
        """A second agent judges the output; its verdict is recorded, a "fail" goes to a
        person (semantic), and nothing it could stage is kept."""
        assert step.verifier is not None and self.agents is not None
        assert self.router is not None
        verifier = self.agents(step.verifier, job.run.agent_version(step.verifier))
        judge_ctx = StepContext(ctx.run_id, ctx.step_id, ctx.attempt, ctx.inputs, ctx.steps,
                                ctx.playbook)
        task = (f"Check the work of another agent.\nTask it was given:\n{step.task}\n\n"
                f"Its output:\n{json.dumps(output, default=str)}\n\nDoes the output "
                "fulfil the task? Answer with a verdict (pass or fail) and a reason.")
        try:
            verdict = run_agent(
                AgentStep(verifier, task, [], VERDICT_SCHEMA, job.row.playbook,
                          budgets=budgets),
                judge_ctx, self.router, self.policies(), self.workspace, self.guard)
        except AgentFailed as exc:
            exc.events = produced.events + exc.events
            exc.calls = produced.calls + exc.calls
            raise
        produced.events.extend(verdict.events)
        produced.calls.extend(verdict.calls)
        produced.events.append(NewEvent("agent.verdict", {
            "verifier": f"{verifier.name}@v{verifier.version}", **verdict.output},
            ctx.run_id, ctx.step_id, f"agent:{verifier.name}@v{verifier.version}",
            time.time()))
        if verdict.output["verdict"] != "pass":
            error = SemanticError(f"verifier {verifier.name} says: {verdict.output['reason']}")
            error.events = produced.events  # type: ignore[attr-defined]
            error.calls = produced.calls  # type: ignore[attr-defined]
            raise error

    def _memory_of(self, job: StepJob) -> MemoryView | None:
        return None if self.memory is None else self.memory(job.row.run_id, job.run.pins)

    def _read(self, row: StepRow, name: str, args: dict[str, Any],
              log: list[NewEvent]) -> Any:
        """A python step's call of a read tool: checked, made now, and logged."""
        spec = self.tools.get(name)
        if spec.effect_for(args) != "read":
            raise DeterministicError(f"{name} is a write: stage it with ctx.stage, so it is "
                                     "checked (and approved) before it acts")
        call = ToolCall(row.run_id, row.step_id,
                        idempotency_key(row.run_id, row.step_id, 0), self.workspace,
                        actor=f"playbook:{row.playbook}@v{row.playbook_version}")
        try:
            result = spec.invoke(args, call)
        except Exception as exc:
            log.append(NewEvent("tool.call", {"tool": name, "args": args,
                                              "error": describe(exc)},
                                row.run_id, row.step_id, call.actor, time.time()))
            raise
        log.append(NewEvent("tool.call", {"tool": name, "args": args, "result": result},
                            row.run_id, row.step_id, call.actor, time.time()))
        return result

    def granted_tools(self, agent: Agent, step: Step) -> list[Tool]:
        """The agent's grants (globs), narrowed by the step's ``tools`` when it names any."""
        names = [name for name in sorted(self.tools.tools)
                 if any(fnmatch.fnmatchcase(name, grant) for grant in agent.tools)]
        if step.tools is not None:
            names = [n for n in names
                     if any(fnmatch.fnmatchcase(n, wanted) for wanted in step.tools)]
        return [self.tools.get(n) for n in names]

    def _check_intents(self, job: StepJob, produced: Produced) -> None:
        """Policy rules apply to what a step stages too: a deny fails the step, a
        ``needs_approval`` sends it to a person with the exact intents."""
        if not produced.intents:
            return  # the common case: no read of the policies at all
        policies = self.policies()
        if not policies.rules:
            return
        row = job.row
        for intent in produced.intents:
            spec = self.tools.get(intent.tool)
            decision = policy.decide(ToolRequest(
                tool=intent.tool, effect=spec.effect_for(intent.args),
                granted=frozenset({intent.tool}), playbook=row.playbook,
                tags=tuple(spec.tags), args=intent.args), policies)
            produced.events.append(NewEvent("policy.decision", {
                "tool": intent.tool, "key": intent.idempotency_key, "args": intent.args,
                "decision": decision.decision, "rule": decision.rule,
                "reason": decision.reason}, row.run_id, row.step_id, "system:policy",
                time.time()))
            if decision.decision == "deny":
                raise DeterministicError(f"policy rule {decision.rule} forbids {intent.tool}: "
                                         f"{decision.reason}")
            if decision.decision == "needs_approval":
                produced.approvals.append(f"{intent.tool}: {decision.reason}")

    def _check(self, step: Step, output: Any) -> None:
        if step.output is not None:
            try:
                jsonschema.validate(output, step.output)
            except jsonschema.ValidationError as exc:
                raise DeterministicError(f"output does not match its schema: {exc.message}"
                                         ) from exc
        for expression in step.check:
            if not templating.evaluate(expression, {"output": output}):
                # A verdict's own reason says more to the person deciding than the rule.
                reason = output.get("reason") if isinstance(output, dict) else None
                why = f": {reason.strip()}" if isinstance(reason, str) and reason.strip() \
                    else ""
                raise SemanticError(f"check failed: {expression}{why}")

    def _failure(self, job: StepJob, step: Step, exc: Exception, started: float,
                 produced: Produced | None = None) -> Outcome:
        kind = classify(exc)
        retry_after = getattr(exc, "retry_after", None)
        decision = decide(step.retry, kind, job.row.attempt, retry_after)
        message = describe(exc)
        statuses: dict[str, Status] = {"retry": "retry", "fail": "failed", "gate": "gate"}
        status = statuses[decision.action]
        wait = wait_of(exc)
        same_attempt = wait is not None
        if wait is not None:  # an open breaker, a limit: wait for it, this was no attempt
            status, decision = "retry", RetryDecision("retry", wait)
        return Outcome(job, status, error=message, delay=decision.delay, kind=kind,
                       gate_message=message if status == "gate" else "",
                       started=started, checked=time.time(),
                       events=list(getattr(exc, "events", None) or
                                   (produced.events if produced else [])),
                       calls=list(getattr(exc, "calls", None) or
                                  (produced.calls if produced else [])),
                       same_attempt=same_attempt)

    def admit_intent(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """An intent's arguments checked against its tool: the schema and the tool's own
        rules (a file tool's folder). Raises a deterministic error naming the problem."""
        return self.tools.get(tool).admit(args, self.workspace)

    def dispatch(self, intent_tool: str, args: dict[str, Any], call: ToolCall) -> Any:
        return self.tools.get(intent_tool).invoke(args, call)

    def compensate(self, spec: CompensateSpec, job: StepJob, original: str,
                   original_output: Any, intent_results: list[Any]) -> Any:
        context = template_context(job)
        context["step"] = {"id": original, "output": original_output, "results": intent_results}
        args = templating.render(spec.args, context)
        call = ToolCall(job.row.run_id, job.row.step_id,
                        idempotency_key(job.row.run_id, job.row.step_id, 0), self.workspace)
        if spec.tool is not None:
            return self.tools.get(spec.tool).invoke(args, call)
        assert spec.python is not None
        ctx = StepContext(job.row.run_id, job.row.step_id, job.row.attempt, job.inputs,
                          context["steps"], job.row.playbook)
        return resolve_callable(spec.python, self.modules)(ctx, **args)
