"""The exception tree of Soloist.

Every error a user can cause is a :class:`SoloistError` whose message is one clear
sentence; interfaces print it and exit non-zero, never a traceback.

::

    SoloistError
     +-- UserError                  bad input from a person: fix it and try again
     |    +-- ConfigError           soloist.toml, environment or flags
     |    +-- DefinitionError       a playbook/agent/policy file (file:line:column)
     |    +-- InputError            run inputs that fail the playbook's schema
     |    +-- NotFound              an unknown playbook, run, approval, version...
     |    +-- InvalidState          the thing exists but cannot do that now
     +-- StepFailure                raised by step code; carries ``kind``
     |    +-- TransientError        retried with backoff (timeouts, 429, 5xx, busy)
     |    +-- DeterministicError    fails the step at once (bad input, 4xx, schema)
     |    +-- SemanticError         a check or business rule failed: goes to a gate
     +-- StoreError                 translated driver errors
     |    +-- StoreUnavailable      cannot reach or open the database (transient)
     |    |    +-- StoreConflict    lost a deadlock/serialization conflict: run it again
     |    +-- LeaseLost             the fencing token was refused: a newer claim owns the step
     +-- IllegalTransition          the lifecycle table refuses a move
"""

from __future__ import annotations

from typing import Literal

FailureKind = Literal["transient", "deterministic", "semantic"]


class SoloistError(Exception):
    """Something went wrong in Soloist."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UserError(SoloistError):
    """The request cannot be carried out as given."""


class ConfigError(UserError):
    """The workspace configuration is invalid."""


class DefinitionError(UserError):
    """A workspace file is invalid.

    ``problems`` holds one ``file:line:column: what is wrong`` string per problem.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = problems[0] if problems else "invalid definition"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(head + more)


class InputError(UserError):
    """The run input does not match the playbook's input schema."""


class NotFound(UserError):
    """No such thing."""


class InvalidState(UserError):
    """That cannot be done in the current state."""


class StepFailure(SoloistError):
    """A step failed; ``kind`` decides what happens next."""

    kind: FailureKind = "deterministic"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(StepFailure):
    """A transient failure: retried with backoff."""

    kind: FailureKind = "transient"


class DeterministicError(StepFailure):
    """A deterministic failure: retrying will not help."""

    kind: FailureKind = "deterministic"


class SemanticError(StepFailure):
    """A check or business rule failed: a person decides."""

    kind: FailureKind = "semantic"


class StoreError(SoloistError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened."""


class StoreConflict(StoreUnavailable):
    """The transaction lost a deadlock or serialization conflict; run it again."""


class LeaseLost(StoreError):
    """The step's lease is held by a newer claim; this worker's write was refused."""


class IllegalTransition(SoloistError):
    """The lifecycle does not allow this move."""


def classify(exc: BaseException) -> FailureKind:
    """The failure kind of any exception raised by step code.

    Exceptions that Soloist did not raise are treated as deterministic, except the
    usual transient families (timeouts and connection errors).
    """
    if isinstance(exc, StepFailure):
        return exc.kind
    if isinstance(exc, TimeoutError | ConnectionError):
        return "transient"
    return "deterministic"


def describe(exc: BaseException) -> str:
    """What a person reads about a failure, without Python's class names or reprs.

    Soloist's own errors are sentences already (their class is the ``kind``, which the log
    keeps beside the text). Another exception comes from step or library code, where the
    type is part of the meaning (``KeyError: 'total'``), so it keeps it.
    """
    if isinstance(exc, SoloistError):
        return exc.message or (type(exc).__doc__ or "").strip()
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
