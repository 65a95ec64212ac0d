"""What a step's code sees: the run's inputs, earlier outputs, and an outbox for intents."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soloist.execution.memory_view import MemoryView

#: (tool, args) -> the args checked against the tool, or a DeterministicError
Admit = Callable[[str, Mapping[str, Any]], Any]
#: (tool, args) -> what a read tool returns (a write raises a DeterministicError)
Read = Callable[[str, Mapping[str, Any]], Any]


def idempotency_key(run_id: str, step_id: str, index: int) -> str:
    """The key every connector receives for one intent; the same on every retry."""
    return f"{run_id}/{step_id}/{index}"


@dataclass(slots=True)
class Intent:
    """A side effect staged by a step: dispatched only after check (and gate) pass."""

    index: int
    tool: str
    args: dict[str, Any]
    description: str
    idempotency_key: str


@dataclass
class StepContext:
    """Passed to python steps (as their first argument) and to tools as ``call``."""

    run_id: str
    step_id: str
    attempt: int
    inputs: dict[str, Any]
    steps: dict[str, Any] = field(default_factory=dict)  # step id -> {"output": ...}
    playbook: str = ""
    guidance: str | None = None
    intents: list[Intent] = field(default_factory=list)
    #: an agent step's fallback: the operator's recent edits of this step's drafts, newest
    #: first (each as ``Workspace.overrides`` gives it), so a template can follow them
    overrides: list[dict[str, Any]] = field(default_factory=list)
    #: checks each intent against its tool as it is staged (the runner sets it)
    admit: Admit | None = field(default=None, repr=False, compare=False)
    #: calls a read tool now (the runner sets it; each call is logged with the step)
    reader: Read | None = field(default=None, repr=False, compare=False)

    def now(self) -> float:
        """The workspace's time (epoch seconds): what its waits and cron triggers read."""
        return time.time() + self.clock_offset

    def read(self, tool: str, args: dict[str, Any] | None = None) -> Any:
        """Call a read tool now (``calendar.free_busy``, ``repo.log``...) and return what it
        returns; a write is refused (stage it with :meth:`stage`)."""
        if self.reader is None:
            from soloist.errors import DeterministicError

            raise DeterministicError("this step cannot call tools")
        return self.reader(tool, dict(args or {}))
    #: the workspace's folder (a step reading files of the workspace starts there)
    workspace: str = ""
    #: how far the workspace's clock is ahead of the real one (only a rehearsal's moves)
    clock_offset: float = 0.0
    #: memory's reads for this run (None where no memory service is wired); writes are
    #: staged, as every side effect is
    memory: MemoryView | None = field(default=None, repr=False, compare=False)

    def stage(self, tool: str, args: dict[str, Any], description: str = "") -> Intent:
        """Stage a side effect through ``tool``; returns the intent with its key.

        The arguments are checked against the tool now: a bad call raises a
        :class:`~soloist.errors.DeterministicError` here, before anything is staged, rather
        than failing at dispatch after its siblings have acted.
        """
        if self.admit is not None:
            self.admit(tool, args)
        index = len(self.intents)
        intent = Intent(index, tool, dict(args), description or f"{tool}",
                        idempotency_key(self.run_id, self.step_id, index))
        self.intents.append(intent)
        return intent


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What a tool receives when it acts: who asks, and the key to deduplicate on."""

    run_id: str
    step_id: str
    idempotency_key: str
    workspace: str
    actor: str = ""  # who the effect is for: "agent:NAME@vN" or "playbook:NAME@vN"
    #: the intent's status as its dispatch found it (pending; transmitting: a send was cut
    #: short), None for a call that is no intent's dispatch
    status: str | None = None
