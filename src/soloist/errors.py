"""The exception tree of Soloist.

Every error a user can cause is a :class:`SoloistError` whose message is one clear
sentence; interfaces print it and exit non-zero, never a traceback.

Every class carries a ``kind`` that decides what a step that raised it does next (read by
:func:`classify`): ``transient`` is retried with backoff, ``deterministic`` fails the step,
``semantic`` sends it to a person. ``retry_after`` (seconds, or ``None``) is the least wait
before a retry that the failing side asked for.

::

    SoloistError                          kind
     +-- UserError                        deterministic: bad input from a person
     |    +-- ConfigError                 soloist.toml, environment or flags
     |    +-- DefinitionError             a playbook/agent/policy file (file:line:column)
     |    +-- InputError                  run inputs that fail the playbook's schema
     |    +-- NotFound                    an unknown playbook, run, approval, version...
     |    +-- InvalidState                the thing exists but cannot do that now
     |    +-- Unauthenticated             no valid token or session (HTTP 401)
     |    |    +-- TooManyAttempts        too many failed sign-ins from one address (429)
     |    +-- PermissionDenied            the token lacks the scope for that (HTTP 403)
     +-- StepFailure                      raised by step code; its subclass is its kind
     |    +-- TransientError              transient: timeouts, 429, 5xx, busy
     |    |    +-- BreakerOpen            a provider's breaker is open; not an attempt
     |    |    +-- OutcomeUnknown         sent, maybe: reconcile before trying again
     |    |    +-- Throttled              a limit says wait (bucket, slot, 429); not an attempt
     |    +-- DeterministicError          deterministic: bad input, 4xx, schema
     |    |    +-- InvalidOutput          a model's reply is not the JSON asked for
     |    |    +-- AgentFailed            an agent gave up (may carry its cause's kind)
     |    |    +-- InvalidPayload         a provider's payload does not map to an entity
     |    |    +-- Forbidden              a server refused the request (not the login)
     |    |    +-- InvalidSyncToken       a server forgot a sync token: read changes anew
     |    |    +-- GitFailed              a git command failed for good
     |    |    +-- SignatureError         a webhook delivery's signature does not check out
     |    |         +-- MissingSignature  no signature header
     |    |         +-- MalformedSignature  the header cannot be read
     |    |         +-- StaleSignature    its timestamp is outside the tolerance
     |    |         +-- WrongSignature    no secret signs this body so
     |    +-- SemanticError               semantic: a check or business rule failed
     |    |    +-- Unconfirmed            sent, maybe, and no way to prove it: a person says
     +-- StoreError                       deterministic: a driver error, translated
     |    +-- UniqueViolation             a row with the same key exists (names it)
     |    +-- StoreUnavailable            transient: cannot reach or open the database
     |    |    +-- StoreConflict          transient: busy, locked, deadlock, serialization
     |    +-- LeaseLost                   transient: a newer claim owns the step
     +-- IllegalTransition                deterministic: the lifecycle refuses a move
     +-- ServerFailed                     deterministic: a local server (the demo's) did not start
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

FailureKind = Literal["transient", "deterministic", "semantic"]


class SoloistError(Exception):
    """Something went wrong in Soloist."""

    kind: FailureKind = "deterministic"
    #: seconds the failing side asked to wait before a retry (``Retry-After``), if any
    retry_after: float | None = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UserError(SoloistError):
    """The request cannot be carried out as given."""

    kind: FailureKind = "deterministic"


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
    """The run input does not match the playbook's input schema.

    ``field`` names the input at fault, where one is (``inputs.who``)."""

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(UserError):
    """No such thing."""


class InvalidState(UserError):
    """That cannot be done in the current state."""


class Unauthenticated(UserError):
    """Sign in first: give a bearer token (``soloist token create``) or use a login link."""


class TooManyAttempts(Unauthenticated):
    """Too many failed sign-ins from this address: wait before trying again."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"too many failed sign-ins from this address; try again in "
                         f"{wait:.0f} s")
        self.retry_after = wait


class PermissionDenied(UserError):
    """The token does not have the scope this needs."""


class StepFailure(SoloistError):
    """A step failed; ``kind`` decides what happens next."""

    kind: FailureKind = "deterministic"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(StepFailure):
    """A transient failure: retried with backoff."""

    kind: FailureKind = "transient"


class BreakerOpen(TransientError):
    """The breaker is open: wait, this attempt does not count."""

    counts_attempt = False


class OutcomeUnknown(TransientError):
    """The request reached the other side, but its answer did not come back: it may or
    may not have taken effect (an email whose DATA was sent, then the connection broke).

    Transient, because trying again is right once the caller has looked for the effect
    (the Message-ID in the Sent folder); a retry without looking may do the thing twice.
    """


class Throttled(TransientError):
    """A limit says wait: the connector's shared bucket is empty, its concurrency cap is
    full, or the server answered ``429``/``Retry-After``. Nobody failed: the step is ready
    again after ``retry_after`` seconds and this attempt does not count."""

    counts_attempt = False


class DeterministicError(StepFailure):
    """A deterministic failure: retrying will not help."""

    kind: FailureKind = "deterministic"


class InvalidOutput(DeterministicError):
    """The model's reply is not JSON, or does not match the requested schema.

    ``problems`` holds one short line per problem (``$.path: what is wrong``).
    """

    def __init__(self, message: str, problems: list[str], text: str) -> None:
        super().__init__(message)
        self.problems = problems
        self.text = text


class InvalidPayload(DeterministicError):
    """A payload from an outside system cannot be mapped to a canonical entity.

    ``entity`` is the entity it was meant to become (``Invoice``), ``field`` the first
    field that failed, written as a path (``lines[2].quantity``), and ``problems`` one
    ``path: what is wrong`` line per failing field.
    """

    def __init__(self, message: str, *, entity: str, field: str,
                 problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.entity = entity
        self.field = field
        self.problems = problems if problems is not None else [message]


class Forbidden(DeterministicError):
    """The server refused the request (``403``): not the credentials, the permission."""


class InvalidSyncToken(DeterministicError):
    """The server no longer knows the sync token: changes must be read from scratch."""


class GitFailed(DeterministicError):
    """A git command failed for a reason retrying will not change."""


class SignatureError(DeterministicError):
    """The webhook delivery's signature does not check out."""


class MissingSignature(SignatureError):
    """The delivery has no signature header."""


class MalformedSignature(SignatureError):
    """The signature header cannot be read."""


class StaleSignature(SignatureError):
    """The signature's timestamp is outside the tolerance."""


class WrongSignature(SignatureError):
    """No signature matches the body with any of the secrets."""


class _Trail(Protocol):
    """What an agent did before it failed (its result so far)."""

    @property
    def events(self) -> list[Any]: ...

    @property
    def calls(self) -> list[Any]: ...


class AgentFailed(DeterministicError):
    """The agent could not produce a valid output; ``events`` and ``calls`` say what it
    did before, so that the log and the cost ledger keep them."""

    def __init__(self, message: str, result: _Trail,
                 kind_of: SoloistError | None = None) -> None:
        super().__init__(message)
        self.events = result.events
        self.calls = result.calls
        self.counts_attempt = getattr(kind_of, "counts_attempt", True)
        if kind_of is not None:
            # A model that timed out or rate-limited, or a store that was busy, stays
            # transient: the step retries.
            self.kind = kind_of.kind
            self.retry_after = kind_of.retry_after


class SemanticError(StepFailure):
    """A check or business rule failed: a person decides."""

    kind: FailureKind = "semantic"


class Unconfirmed(SemanticError):
    """An effect may have happened and nothing can prove whether it did (the process
    stopped while an email was being sent, and the Sent folder does not show it): a
    person decides whether to do it again or to record it as done."""


class StoreError(SoloistError):
    """The store failed."""

    kind: FailureKind = "deterministic"


class UniqueViolation(StoreError):
    """A row with the same key already exists.

    ``table`` and ``columns`` name the key the same way on both backends. ``constraint``
    is PostgreSQL's constraint (or unique index) name, such as ``intents_pkey``; SQLite
    names none, so there it is ``table(column, ...)`` from its message.
    """

    def __init__(self, message: str, *, constraint: str, table: str = "",
                 columns: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.table = table
        self.columns = columns


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened."""

    kind: FailureKind = "transient"


class StoreConflict(StoreUnavailable):
    """The database was busy, or the transaction lost a deadlock or serialization
    conflict; run it again."""

    kind: FailureKind = "transient"


class LeaseLost(StoreError):
    """The step's lease is held by a newer claim; this worker's write was refused."""

    # Transient: the refusal says this worker is stale, not that the step's work is wrong.
    # The newer claim carries the step on; nothing here may fail it for good.
    kind: FailureKind = "transient"


class IllegalTransition(SoloistError):
    """The lifecycle does not allow this move."""

    kind: FailureKind = "deterministic"


class ServerFailed(SoloistError):
    """A local server did not start (its message names it and ends with its log)."""

    kind: FailureKind = "deterministic"


def classify(exc: BaseException) -> FailureKind:
    """The failure kind of any exception raised by step code.

    A Soloist error says its own ``kind``. Exceptions that Soloist did not raise are
    treated as deterministic, except the usual transient families (timeouts and
    connection errors).
    """
    if isinstance(exc, SoloistError):
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
