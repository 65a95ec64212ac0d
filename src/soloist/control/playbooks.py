"""The playbook model: YAML files and the Python API compile to these classes.

A playbook is a graph of steps. Each step has one kind, given by the key that names what
it does: ``python: module:function``, ``tool: name``, ``emit: topic``, or only ``gate:``
for a step that waits for a person. ``needs`` orders steps; when it is left out a step
needs the step before it, so a plain list runs in order.
"""

from __future__ import annotations

import fnmatch
import re
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soloist.config.durations import Duration, PositiveDuration


class StepKind(StrEnum):
    PYTHON = "python"
    TOOL = "tool"
    GATE = "gate"
    EMIT = "emit"
    AGENT = "agent"
    WAIT = "wait"


NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
# One part of a memory namespace or a document's key: what a path under memory/, a CLI
# argument and a run's pins all carry without quoting.
MEMORY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def document_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a memory document as ``namespace/key``, or None."""
    parts = name.split("/")
    if len(parts) < 2 or not all(MEMORY_PART.match(p) for p in parts):
        return (f"{name!r} must name a document as namespace/key (letters, digits, '.', "
                "'_' and '-' in each part), as memory/namespace/key.md does")
    return None
MAX_STEPS = 5000  # far above any playbook a person writes; keeps a deploy and a run bounded
# Priorities are stored in a 32-bit integer column (PostgreSQL's ``integer``).
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1


class Model(BaseModel):
    """Strict base: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Model):
    """How a step that fails transiently is retried: exponential backoff with jitter."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    backoff: Duration = 1.0
    multiplier: float = Field(default=2.0, ge=1.0)
    max_backoff: Duration = 300.0
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)


class GateSpec(Model):
    """A person approves, rejects or retries the step before its effects are dispatched."""

    message: str = "Approve this step?"
    timeout: PositiveDuration | None = None
    default: Literal["approve", "reject"] | None = None

    @model_validator(mode="after")
    def _default_needs_timeout(self) -> GateSpec:
        if self.default is not None and self.timeout is None:
            raise ValueError("a gate's default decision needs a timeout")
        return self


class CompensateSpec(Model):
    """The action that undoes a dispatched step: a tool or a Python function."""

    tool: str | None = None
    python: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exactly_one(self) -> CompensateSpec:
        if (self.tool is None) == (self.python is None):
            raise ValueError("compensate needs exactly one of tool or python")
        return self


class WaitSpec(Model):
    """What a ``wait`` step waits for: an event (``event``, with ``when`` over it and
    ``timeout``), or a time (``for``). Its output says which: ``{event, timed_out}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    event: str | None = Field(default=None, min_length=1)  # a topic, ``*`` as in triggers
    when: str | None = None  # an expression over ``event``, ``run`` and ``inputs``
    timeout: PositiveDuration | None = None  # on the workspace's clock
    for_: PositiveDuration | None = Field(default=None, alias="for")

    @model_validator(mode="after")
    def _event_or_time(self) -> WaitSpec:
        if (self.event is None) == (self.for_ is None):
            raise ValueError("a wait needs exactly one of event (with an optional when and "
                             "timeout) or for (a duration)")
        if self.event is None and (self.when is not None or self.timeout is not None):
            raise ValueError("when and timeout belong to a wait for an event; a wait for a "
                             "duration has only for")
        return self

    @property
    def duration(self) -> float | None:
        """Seconds until it times out, if it ever does."""
        return self.for_ if self.for_ is not None else self.timeout


class StopOn(Model):
    """An event that ends a run at once, as done: what has not begun is skipped, a gate
    waiting for a person is withdrawn (a reply stops the follow-ups)."""

    event: str = Field(min_length=1)
    when: str | None = None  # an expression over ``event``, ``run`` and ``inputs``


class FallbackSpec(Model):
    """What an agent step does instead when its model is too weak or its agent cannot
    produce valid work: a Python function, called like a python step (README: "Agents,
    models and tools")."""

    python: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    args: dict[str, Any] = Field(default_factory=dict)  # templated like a step's args
    #: globs of "provider:model" for which the agent is not tried at all
    models: list[str] = Field(default_factory=list)

    def skips(self, route: str) -> str | None:
        """The glob of ``models`` that ``route`` ("provider:model") matches, if one does."""
        return next((glob for glob in self.models if fnmatch.fnmatchcase(route, glob)), None)


class Step(Model):
    id: str = Field(pattern=NAME_PATTERN)
    python: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    tool: str | None = None
    emit: str | None = None
    agent: str | None = None  # an agent step: the agent that does ``task``
    task: str | None = None  # templated
    tools: list[str] | None = None  # narrows the agent's grants for this step
    verifier: str | None = None  # an agent whose verdict on the output is recorded
    wait: WaitSpec | None = None  # a wait step: for an event or a time
    fallback: FallbackSpec | None = None  # what an agent step does when its agent cannot
    args: dict[str, Any] = Field(default_factory=dict)
    needs: list[str] | None = None
    when: str | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: PositiveDuration | None = None
    gate: GateSpec | None = None
    compensate: CompensateSpec | None = None
    output: dict[str, Any] | None = None  # JSON schema the output must match
    check: list[str] = Field(default_factory=list)  # expressions over ``output``
    description: str = ""

    @field_validator("gate", mode="before")
    @classmethod
    def _gate_true(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        named = [k for k in ("python", "tool", "emit", "agent", "wait")
                 if getattr(self, k) is not None]
        if len(named) > 1:
            raise ValueError(f"a step has one kind, but this one names {' and '.join(named)}")
        if not named and self.gate is None:
            raise ValueError("a step needs one of python, tool, emit, agent, wait or gate")
        if self.wait is not None and (self.gate is not None or self.compensate is not None
                                      or self.args):
            raise ValueError("a wait step has no gate, compensate or args: it only waits")
        if self.agent is not None and not self.task:
            raise ValueError("an agent step needs a task")
        if self.agent is None and (self.task or self.tools is not None or self.verifier):
            raise ValueError("task, tools and verifier belong to agent steps")
        if self.agent is None and self.fallback is not None:
            raise ValueError("fallback belongs to agent steps: it runs when the agent "
                             "cannot do the work")
        return self

    @property
    def kind(self) -> StepKind:
        if self.python is not None:
            return StepKind.PYTHON
        if self.tool is not None:
            return StepKind.TOOL
        if self.emit is not None:
            return StepKind.EMIT
        if self.agent is not None:
            return StepKind.AGENT
        if self.wait is not None:
            return StepKind.WAIT
        return StepKind.GATE


class ManualTrigger(Model):
    manual: Literal[True] = True


class CronTrigger(Model):
    cron: str
    timezone: str = "UTC"
    inputs: dict[str, Any] = Field(default_factory=dict)


class EventTrigger(Model):
    event: str  # a topic; ``*`` matches one dotted segment or more at the end
    when: str | None = None  # an expression over ``event``
    inputs: dict[str, Any] = Field(default_factory=dict)  # templated over ``event``


Trigger = ManualTrigger | CronTrigger | EventTrigger


class Budget(Model):
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    deadline: PositiveDuration | None = None  # a run not finished by then fails


class Playbook(Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    version: int | None = None  # assigned by deploy
    inputs: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    triggers: list[Trigger] = Field(default_factory=lambda: list[Trigger]([ManualTrigger()]))
    budget: Budget = Field(default_factory=Budget)
    queue: str = Field(default="default", pattern=NAME_PATTERN)
    priority: int = Field(default=0, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    concurrency: int | None = Field(default=None, ge=1)  # steps of this playbook in flight
    stop_on: list[StopOn] = Field(default_factory=list)  # events that end a run as done
    steps: list[Step] = Field(min_length=1)
    #: the memory documents (``namespace/key``) its steps read: a run pins their versions
    memory: list[str] = Field(default_factory=list)

    @field_validator("memory")
    @classmethod
    def _document_names(cls, value: list[str]) -> list[str]:
        for name in value:
            problem = document_name_problem(name)
            if problem is not None:
                raise ValueError(problem)
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"document(s) named twice: {', '.join(repeated)}")
        return value

    @field_validator("inputs")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") not in ("object", ["object"]):
            raise ValueError("the inputs schema must describe an object (type: object), "
                             "since a run's inputs are named values")
        return value

    @field_validator("steps", mode="before")
    @classmethod
    def _not_too_many(cls, value: Any) -> Any:
        # Checked before the steps are validated, so a huge list costs nothing.
        if isinstance(value, list) and len(value) > MAX_STEPS:
            raise ValueError(f"a playbook may have at most {MAX_STEPS} steps, this one has "
                             f"{len(value)}; split it into playbooks that start each other")
        return value

    @field_validator("triggers", mode="before")
    @classmethod
    def _bare_manual(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"manual": True} if item == "manual" else item for item in value]
        return value

    @model_validator(mode="after")
    def _graph(self) -> Playbook:
        ids = [step.id for step in self.steps]
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        for step, needs in zip(self.steps, self.needs_of(), strict=True):
            for need in needs:
                if need not in seen:
                    raise ValueError(f"step {step.id!r} needs {need!r}, which is not a step")
                if need == step.id:
                    raise ValueError(f"step {step.id!r} needs itself")
        if topological_order(ids, self.needs_of()) is None:
            raise ValueError("the steps' needs form a cycle")
        return self

    def needs_of(self) -> list[list[str]]:
        """Each step's needs, with the implicit 'the step before' filled in."""
        result: list[list[str]] = []
        for index, step in enumerate(self.steps):
            if step.needs is not None:
                result.append(list(step.needs))
            else:
                result.append([self.steps[index - 1].id] if index else [])
        return result

    def step(self, step_id: str) -> Step:
        return self.steps_by_id[step_id]

    @cached_property
    def steps_by_id(self) -> dict[str, Step]:
        return {step.id: step for step in self.steps}

    @cached_property
    def dependents_map(self) -> dict[str, list[str]]:
        """:meth:`dependents`, computed once per (immutable) playbook."""
        return self.dependents()

    def dependents(self) -> dict[str, list[str]]:
        """For each step, the steps that need it."""
        out: dict[str, list[str]] = {step.id: [] for step in self.steps}
        for step, needs in zip(self.steps, self.needs_of(), strict=True):
            for need in needs:
                out[need].append(step.id)
        return out


def topological_order(ids: list[str], needs: list[list[str]]) -> list[str] | None:
    """``ids`` ordered so that each comes after what it needs, or None on a cycle.

    Kahn's algorithm: O(steps + needs). ``needs[i]`` are the needs of ``ids[i]``, all of
    them ids (the model checks that first).
    """
    waiting = {step: len(set(wanted)) for step, wanted in zip(ids, needs, strict=True)}
    dependents: dict[str, list[str]] = {step: [] for step in ids}
    for step, wanted in zip(ids, needs, strict=True):
        for need in set(wanted):
            dependents[need].append(step)
    ready = [step for step in ids if not waiting[step]]
    order: list[str] = []
    while ready:
        step = ready.pop()
        order.append(step)
        for dependent in dependents[step]:
            waiting[dependent] -= 1
            if not waiting[dependent]:
                ready.append(dependent)
    return order if len(order) == len(ids) else None
