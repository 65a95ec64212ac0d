"""What every connector is: actions that become tools, sources that become triggers.

A connector is built from its ``[connectors.NAME]`` table and a :class:`Context` (the
store, its secrets, its guard, a folder of its own) and does no I/O until asked. It offers

* **actions** (:class:`Action`): each becomes the tool ``NAME.ACTION`` (``mail.send``), so
  grants, policies, gates, intents, idempotency keys and compensation apply to it as to
  any tool. A guarded action runs inside the connector's :class:`~.guard.Guard`: its
  breaker, its concurrency cap and its shared rate limit, every worker together;
* **sources** (:class:`Source`): what the connector reads from outside (an IMAP folder, a
  calendar, a remote's refs). :mod:`soloist.integrations.ingest` polls each into the
  store's bounded inbound backlog, advancing the source's cursor in the same transaction,
  and the scheduler publishes what is there on the event bus, where ``triggers: [{event:
  email.received, ...}]`` start playbooks;
* :meth:`Connector.test`: one real round trip, which says in one sentence what is wrong.
"""

from __future__ import annotations

import functools
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from soloist.config.connectors import ConnectorBase
from soloist.config.references import secret_name
from soloist.execution.tools.base import Effect, Tool, ToolCompensation

if TYPE_CHECKING:
    from soloist.integrations.guard import Guard
    from soloist.store.base import Store

#: how long a connector keeps a secret's value before it reads it again
SECRET_SECONDS = 5.0


@dataclass(frozen=True)
class Received:
    """One event read from a source, not yet in the store.

    ``delivery_id`` is unique within the source (an IMAP UID with its UIDVALIDITY, a
    resource's href and ETag, a ref and its new sha): the backlog refuses it a second
    time. ``cursor`` is the source's cursor once this event is taken: an ingest that can
    keep only some of a batch advances the cursor to the last one kept.
    """

    delivery_id: str
    topic: str  # "email.received", "calendar.changed", "git.pushed", ...
    payload: dict[str, Any]
    cursor: Any


@dataclass(frozen=True)
class Polled:
    """What one poll read: its events, in order, and the cursor once all are taken."""

    events: list[Received] = field(default_factory=list)
    cursor: Any = None
    more: bool = False  # the source holds more than the poll was allowed to read


class Source(Protocol):
    """Something a connector reads from outside, by a cursor kept in the store."""

    @property
    def id(self) -> str:
        """The source's name within its connector (``INBOX``, ``events``, ``refs``)."""
        ...

    @property
    def interval(self) -> float:
        """Seconds between two polls."""
        ...

    def poll(self, cursor: Any, limit: int) -> Polled:
        """The events after ``cursor`` (``None``: the source was never read), at most
        ``limit`` of them; raises Soloist's errors, never a library's."""
        ...


class Hook(Protocol):
    """How a connector takes deliveries pushed to it (``POST /hooks/PATH``): a signed
    webhook, a billing provider's events."""

    @property
    def path(self) -> str:
        """The last segment of the URL it is served at."""
        ...

    def accept(self, headers: Mapping[str, str], body: bytes, now: float) -> Received:
        """The delivery as an event to store, once its signature checks out; raises a
        :class:`~soloist.errors.SignatureError` or :class:`~soloist.errors.InvalidPayload`
        saying what is wrong (nothing is stored then)."""
        ...


@dataclass(frozen=True)
class Action:
    """An action of a connector; :meth:`Connector.tools` makes it the tool ``NAME.name``.

    ``fn`` is a plain function whose type hints are the tool's schema; a parameter named
    ``call`` receives the :class:`~soloist.execution.context.ToolCall` (its idempotency
    key). ``compensate`` names another action of the same connector and the template of
    its arguments over the original ``args`` and ``result``.
    """

    name: str
    fn: Callable[..., Any]
    effect: Effect = "read"
    idempotent: bool = False
    tags: tuple[str, ...] = ()
    compensate: tuple[str, Mapping[str, Any]] | None = None
    description: str = ""
    #: through the guard (breaker, cap, rate limit); False for what calls no server
    guarded: bool = True


@dataclass(frozen=True)
class Context:
    """What a connector is given: everything it may use, nothing global."""

    store: Store
    secret: Callable[[str], str]  # a secret's NAME -> its value
    guard: Guard
    folder: Path  # a folder of its own under .soloist/ (git's working copy)
    workspace: Path
    #: what the connector's events and results say it is (``person:ada``)
    actor: str = "system:connector"


class Connector(ABC):
    """Subclasses set ``kind`` and implement :meth:`actions`, :meth:`sources` and
    :meth:`test`; :meth:`close` frees what they hold open."""

    kind: ClassVar[str]

    def __init__(self, name: str, section: ConnectorBase, context: Context) -> None:
        self.name = name
        self.section = section
        self.context = context
        self._secrets: dict[str, tuple[float, str]] = {}

    @property
    def guard(self) -> Guard:
        return self.context.guard

    def secret(self, reference: str | None) -> str | None:
        """The value of a ``secret:NAME`` setting (``None`` stays ``None``), read again
        after :data:`SECRET_SECONDS`: a secret set anew applies within seconds, and an
        email does not cost a read and a decryption of its password."""
        if reference is None:
            return None
        name = secret_name(reference) or reference
        now = time.monotonic()
        kept = self._secrets.get(name)
        if kept is not None and now - kept[0] < SECRET_SECONDS:
            return kept[1]
        value = self.context.secret(name)
        self._secrets[name] = (now, value)
        return value

    @abstractmethod
    def actions(self) -> Sequence[Action]: ...

    def sources(self) -> Sequence[Source]:
        return ()

    def hook(self) -> Hook | None:
        """What takes this connector's pushed deliveries; None: it takes none."""
        return None

    @abstractmethod
    def test(self) -> str:
        """Make one real round trip; say what was checked (``logged in to ... as ada``)
        or raise a Soloist error whose message says what is wrong."""

    def close(self) -> None:
        """Free connections and other resources; never raises."""
        return None

    def prepare(self) -> None:
        """Do now, in a worker that is starting, what a first call would otherwise do
        while its turn of the rate limit passes (the imports and parsers it loads on
        first use); no network. A worker says it is ready after this."""
        return None

    def tools(self) -> list[Tool]:
        """Each action as the tool ``NAME.ACTION``."""
        return [self._tool(action) for action in self.actions()]

    def tool_name(self, action: str) -> str:
        return f"{self.name}.{action}"

    def _tool(self, action: Action) -> Tool:
        fn = self._guarded(action.fn) if action.guarded else action.fn
        compensate = None
        if action.compensate is not None:
            undo, args = action.compensate
            compensate = ToolCompensation(self.tool_name(undo), dict(args))
        description = action.description or _first_line(action.fn.__doc__)
        return Tool(self.tool_name(action.name), fn, action.effect, action.idempotent,
                    f"{description} ({self.name}, {self.kind})",
                    (*action.tags, f"connector:{self.name}"), compensate=compensate)

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        guard = self.guard

        @functools.wraps(fn)  # the tool's schema comes from fn's signature, kept here
        def run(**kwargs: Any) -> Any:
            call = kwargs.get("call")
            key = getattr(call, "idempotency_key", None) or f"read-{secrets.token_hex(6)}"
            return guard.call(key, lambda: fn(**kwargs))

        return run


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()
