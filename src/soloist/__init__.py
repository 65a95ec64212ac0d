"""Soloist: durable playbooks, agents and memory for a one-person company.

The public API is what ``__all__`` lists (see "Python API" in the README); everything else
lives in the planes below and may move. ``import soloist`` imports none of them: each name
is imported from its home module the first time it is read, so the ``soloist`` command,
whose modules live inside this package, does not pay for what it does not use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing alone costs more than the rest
if TYPE_CHECKING:
    from typing import Any

    from soloist.control.agents import Agent
    from soloist.control.playbooks import Playbook
    from soloist.control.policies import Policies
    from soloist.errors import (
        AgentFailed,
        BreakerOpen,
        ConfigError,
        DefinitionError,
        DeterministicError,
        Forbidden,
        GitFailed,
        IllegalTransition,
        InputError,
        InvalidOutput,
        InvalidPayload,
        InvalidState,
        InvalidSyncToken,
        LeaseLost,
        MalformedSignature,
        MissingSignature,
        NotFound,
        OutcomeUnknown,
        PermissionDenied,
        SemanticError,
        ServerFailed,
        SignatureError,
        SoloistError,
        StaleSignature,
        StepFailure,
        StoreConflict,
        StoreError,
        StoreUnavailable,
        Throttled,
        TooManyAttempts,
        TransientError,
        Unauthenticated,
        Unconfirmed,
        UniqueViolation,
        UserError,
        WrongSignature,
    )
    from soloist.execution.context import StepContext, ToolCall
    from soloist.execution.tools.base import tool
    from soloist.memory.facts import Cause
    from soloist.workspace import Workspace

__all__ = [
    "Agent",
    "AgentFailed",
    "BreakerOpen",
    "Cause",
    "ConfigError",
    "DefinitionError",
    "DeterministicError",
    "Forbidden",
    "GitFailed",
    "IllegalTransition",
    "InputError",
    "InvalidOutput",
    "InvalidPayload",
    "InvalidState",
    "InvalidSyncToken",
    "LeaseLost",
    "MalformedSignature",
    "MissingSignature",
    "NotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "Playbook",
    "Policies",
    "SemanticError",
    "ServerFailed",
    "SignatureError",
    "SoloistError",
    "StaleSignature",
    "StepContext",
    "StepFailure",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "Throttled",
    "TooManyAttempts",
    "ToolCall",
    "TransientError",
    "Unauthenticated",
    "Unconfirmed",
    "UniqueViolation",
    "UserError",
    "Workspace",
    "WrongSignature",
    "tool",
]

#: Where each name lives; the error classes all live in soloist.errors.
_HOMES = {
    "Workspace": "soloist.workspace",
    "Playbook": "soloist.control.playbooks",
    "Agent": "soloist.control.agents",
    "Policies": "soloist.control.policies",
    "tool": "soloist.execution.tools.base",
    "StepContext": "soloist.execution.context",
    "ToolCall": "soloist.execution.context",
    "Cause": "soloist.memory.facts",
}


if not TYPE_CHECKING:  # a type checker sees the imports above, and so refuses a misspelt name

    def __getattr__(name: str) -> Any:
        if name not in __all__:
            raise AttributeError(f"module 'soloist' has no attribute {name!r}")
        home = _HOMES.get(name, "soloist.errors")
        value = getattr(__import__(home, fromlist=[name]), name)  # the module, not soloist
        globals()[name] = value  # read once: later lookups do not come back here
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
