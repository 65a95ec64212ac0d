"""The storage contract: one protocol per aggregate, reached through a transaction.

Backends implement :class:`Store`. Domain rules (the lifecycle table, retry decisions,
hash chaining) live above this contract; a backend only stores and finds rows. Every
write happens inside ``store.transaction()``; the episodic events buffered with
``tx.events.append`` are chained and written at commit, after the other writes, so the
lock on the chain head is held as briefly as possible. Connector state (cursors, shared
rate-limit buckets and slots, inbound backlogs) has its part of the contract in
``soloist.store.connectors``.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from soloist.store.access import Tokens
from soloist.store.connectors import Buckets, Cursors, Inbound
from soloist.store.measures import Measures
from soloist.store.waits import Clock, Waits


@dataclass(slots=True)
class RunRow:
    id: str
    playbook: str
    playbook_version: int
    state: str
    inputs: Any
    queue: str
    priority: int
    created_at: float
    deadline_at: float | None
    finished_at: float | None
    trigger: Any
    error: str | None
    steps_remaining: int
    created_by: str
    final_state: str | None = None  # where a compensating run ends: failed or cancelled
    pins: Any = None  # versions the run started with: {"agents": {name: version}, ...}


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a list shows; every field is optional. ``text`` is found, as it is
    written, in a run's inputs (their JSON) or its error."""

    state: str | None = None
    playbook: str | None = None
    version: int | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before
    text: str | None = None


@dataclass(slots=True)
class StepRow:
    id: int
    run_id: str
    step_id: str
    position: int
    kind: str  # "step" or "compensation"
    playbook: str
    playbook_version: int
    queue: str
    priority: int
    state: str
    resume: str  # what a claim does next: "execute" or "dispatch"
    attempt: int
    pending_needs: int
    available_at: float
    lease_owner: str | None
    lease_expires: float | None
    lease_token: int
    output: Any
    error: str | None
    guidance: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(slots=True)
class NewStep:
    run_id: str
    step_id: str
    position: int
    kind: str
    playbook: str
    playbook_version: int
    queue: str
    priority: int
    state: str
    pending_needs: int
    available_at: float
    created_at: float


@dataclass(slots=True)
class IntentRow:
    run_id: str
    step_id: str
    idx: int
    idempotency_key: str
    tool: str
    args: Any
    description: str
    status: str  # staged | pending | transmitting | dispatched | failed | compensated
    result: Any
    error: str | None
    created_at: float
    dispatched_at: float | None
    undo: Any = None  # {"tool", "args"}: how to undo it, once dispatched


@dataclass(slots=True)
class ApprovalRow:
    id: str
    run_id: str
    step_id: str
    attempt: int
    reason: str  # "gate" or "semantic"
    message: str
    created_at: float
    expires_at: float | None
    default_decision: str | None
    decision: str | None
    decided_by: str | None
    decided_at: float | None
    note: str | None


@dataclass(slots=True)
class EventRow:
    seq: int
    ts: float
    kind: str
    run_id: str | None
    step_id: str | None
    actor: str
    data: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The stored end of the hash chain: every append moves it in the same transaction, so
    a log that ends before it has lost its tail."""

    seq: int
    hash: str


@dataclass(slots=True)
class NewEvent:
    """An event buffered in a transaction; it gets its place in the chain at commit."""

    kind: str
    data: dict[str, Any]
    run_id: str | None = None
    step_id: str | None = None
    actor: str = "system"
    ts: float = 0.0


@dataclass(slots=True)
class DefinitionRow:
    kind: str  # playbook | agent | policies
    name: str
    version: int
    digest: str
    body: Any
    source: str | None
    deployed_by: str
    deployed_at: float
    note: str | None


@dataclass(slots=True)
class BusMessage:
    id: int
    topic: str
    payload: Any
    run_id: str | None
    created_at: float


@dataclass(slots=True)
class SecretRow:
    name: str
    ciphertext: str
    updated_at: float
    updated_by: str


@dataclass(slots=True)
class LLMCallRow:
    """One model call in the cost ledger."""

    run_id: str | None
    step_id: str | None
    playbook: str | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float
    cached: bool
    created_at: float


@dataclass(slots=True)
class FactRow:
    """One version of a fact: what was believed, since when, by whom, and why."""

    namespace: str
    subject: str
    key: str
    version: int
    op: str  # put | forget | revert
    value: Any
    actor: str
    reason: str
    run_id: str | None
    step_id: str | None
    reverts: int | None  # the version whose value this one restores
    valid_from: float
    valid_to: float | None
    expires_at: float | None
    recorded_at: float
    #: what it was drawn from: references such as {"kind": "email", "message_id": "<...>"}
    sources: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class DocumentRow:
    """One version of a document, with who wrote it and why."""

    namespace: str
    doc_key: str
    version: int
    text: str
    metadata: Any
    actor: str
    reason: str
    run_id: str | None
    step_id: str | None
    created_at: float


@dataclass(slots=True)
class ChunkRow:
    id: int
    namespace: str
    doc_key: str
    seq: int
    text: str
    metadata: Any
    created_at: float
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class ChunkFilter:
    """Narrows a search beyond the namespace: the ``subject`` named in the document's
    metadata, and when the version was written (``since`` <= created_at < ``until``)."""

    subject: str | None = None
    since: float | None = None
    until: float | None = None

    def __bool__(self) -> bool:
        return (self.subject, self.since, self.until) != (None, None, None)

    def admits(self, chunk: ChunkRow) -> bool:
        meta = chunk.metadata if isinstance(chunk.metadata, dict) else {}
        return ((self.subject is None or meta.get("subject") == self.subject)
                and (self.since is None or chunk.created_at >= self.since)
                and (self.until is None or chunk.created_at < self.until))


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    model: str
    dim: int
    indexed: bool
    generation: int = 0  # bumped by every re-embed batch


@dataclass(slots=True)
class NewDocument:
    namespace: str
    doc_key: str
    text: str
    metadata: Any
    chunks: list[str]
    embeddings: list[bytes] | None
    model: str | None
    actor: str
    reason: str
    run_id: str | None
    step_id: str | None
    created_at: float
    thread: str | None = None  # a conversation or message thread, in ``position`` order
    position: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadChunk:
    """The first chunk of a document in a thread: what its neighbours' context is made of."""

    id: int
    document_id: int
    doc_key: str
    position: int
    text: str
    metadata: str  # as stored (JSON text)
    created_at: float


@dataclass(slots=True)
class BreakerRow:
    name: str
    state: str  # closed | open | half_open
    failures: int
    opened_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The recorded outcome of one dispatched intent (kept across restores)."""

    idempotency_key: str
    run_id: str | None
    step_id: str | None
    tool: str | None
    status: str  # dispatched | failed
    result: Any
    error: str | None
    recorded_at: float


@dataclass(slots=True)
class StepUpdate:
    """A fenced write to a leased step: refused unless the lease token still matches."""

    id: int
    lease_token: int
    state: str
    output: Any = None
    error: str | None = None
    attempt: int | None = None
    available_at: float | None = None
    resume: str | None = None
    keep_lease: bool = False
    finished_at: float | None = None


class Runs(Protocol):
    def insert(self, run: RunRow) -> None: ...
    def get(self, run_id: str) -> RunRow | None: ...
    def get_many(self, run_ids: Sequence[str]) -> dict[str, RunRow]: ...
    def list(self, *, state: str | None = None, playbook: str | None = None,
             limit: int = 100) -> builtins.list[RunRow]: ...
    def page(self, match: RunFilter, *, before: tuple[float, str] | None = None,
             limit: int = 50) -> builtins.list[RunRow]:
        """Runs matching ``match``, newest first, from just after ``before`` (the
        ``(created_at, id)`` of the last run of the previous page)."""
        ...
    def count(self, match: RunFilter) -> int: ...
    def reopen(self, run_id: str) -> bool:
        """A failed run (that undid nothing) running again; false if it is not one."""
        ...
    def set_state(self, run_id: str, state: str, *, expect: Sequence[str],
                  error: str | None = None, finished_at: float | None = None,
                  final_state: str | None = None) -> bool: ...
    def step_finished(self, run_ids: Sequence[str]) -> builtins.list[tuple[str, int]]:
        """Decrement steps_remaining for each id (once per occurrence); return new counts."""
        ...
    def count_by_state(self) -> dict[str, int]: ...
    def past_deadline(self, now: float, limit: int) -> builtins.list[RunRow]: ...


class Steps(Protocol):
    def insert_many(self, steps: Sequence[NewStep]) -> None: ...
    def claim(self, owner: str, now: float, lease_seconds: float, limit: int,
              exclude_playbooks: Sequence[str] = (), exclude_queues: Sequence[str] = ()
              ) -> builtins.list[StepRow]: ...
    def lock_for_limits(self) -> None:
        """Serialise claims that must respect concurrency limits (until commit)."""
        ...
    def leased_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Leased steps per playbook and per queue."""
        ...
    def leased_by_owner(self) -> dict[str, int]:
        """Leased steps per lease owner (a worker's id): the steps in its hands."""
        ...
    def update_fenced(self, updates: Sequence[StepUpdate]) -> builtins.list[int]:
        """Apply each update if its lease token still holds; return the ids refused."""
        ...
    def lease_tokens(self, ids: Sequence[int]) -> dict[int, int]:
        """The lease token of each of these steps that is still leased (locked on PG)."""
        ...
    def finish_many(self, updates: Sequence[StepUpdate]) -> None:
        """Write updates already fenced with :meth:`lease_tokens` in this transaction."""
        ...
    def promote_many(self, pairs: Sequence[tuple[str, str]], now: float
                     ) -> builtins.list[tuple[str, str]]:
        """:meth:`promote` for many (run, step) pairs at once (a pair may repeat)."""
        ...
    def heartbeat(self, owner: str, ids: Sequence[int], expires: float) -> int: ...
    def expired(self, now: float, limit: int) -> builtins.list[StepRow]: ...
    def release_expired(self, step: StepRow, now: float) -> bool: ...
    def promote(self, run_id: str, step_ids: Sequence[str], now: float) -> builtins.list[str]:
        """Count one finished need for each step; return those that became ready."""
        ...
    def for_run(self, run_id: str) -> builtins.list[StepRow]: ...
    def get(self, run_id: str, step_id: str) -> StepRow | None: ...
    def outputs(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def set_state(self, step_pk: int, state: str, *, expect: Sequence[str],
                  resume: str | None = None, attempt: int | None = None,
                  available_at: float | None = None, error: str | None = None,
                  guidance: str | None = None, finished_at: float | None = None) -> bool: ...
    def cancel_open(self, run_id: str, now: float) -> builtins.list[tuple[str, str]]:
        """Cancel every step of the run that is not terminal and not leased."""
        ...
    def reopen(self, step_pk: int, state: str, now: float) -> bool:
        """A failed or cancelled step to ``state`` (ready or scheduled) as new: attempt 1,
        no error, no times; false if it is neither."""
        ...
    def next_available(self) -> float | None: ...


class Intents(Protocol):
    def insert_many(self, intents: Sequence[IntentRow]) -> None: ...
    def for_step(self, run_id: str, step_id: str) -> builtins.list[IntentRow]: ...
    def for_run(self, run_id: str) -> builtins.list[IntentRow]: ...
    def set_status(self, run_id: str, step_id: str, status: str, *,
                   expect: Sequence[str]) -> int: ...
    def set_args(self, run_id: str, step_id: str, idx: int, args: Any) -> bool:
        """Replace a staged intent's arguments (a person's edit at its gate); false if it
        is not staged (any more)."""
        ...
    def record_result(self, idempotency_key: str, status: str, result: Any,
                      error: str | None, now: float, undo: Any = None) -> None: ...
    def get(self, idempotency_key: str) -> IntentRow | None: ...
    def mark(self, idempotency_key: str, status: str, *, expect: Sequence[str],
             now: float) -> bool:
        """Move one intent to ``status`` if it is in one of ``expect``, with
        ``dispatched_at`` set to ``now`` (when its dispatch began to act); false if it
        was not in one of those."""
        ...


class Approvals(Protocol):
    def insert(self, approval: ApprovalRow) -> None: ...
    def get(self, approval_id: str) -> ApprovalRow | None: ...
    def open(self, limit: int = 100) -> builtins.list[ApprovalRow]: ...
    def for_run(self, run_id: str) -> builtins.list[ApprovalRow]: ...
    def decide(self, approval_id: str, decision: str, by: str, note: str | None,
               now: float) -> bool: ...
    def expired(self, now: float) -> builtins.list[ApprovalRow]: ...
    def close_for_run(self, run_id: str, decision: str, by: str, now: float) -> int: ...
    def decided_by_people(self, since: float) -> int:
        """Approvals decided by a person (not by a timeout or a cancellation) since then."""
        ...


class Events(Protocol):
    def append(self, event: NewEvent) -> None:
        """Buffer an event; it is chained and written when the transaction commits."""
        ...
    def extend(self, events: Sequence[NewEvent]) -> None: ...
    def list(self, *, run_id: str | None = None, after_seq: int = 0,
             limit: int = 1000) -> builtins.list[EventRow]: ...
    def scan(self, after_seq: int, limit: int) -> builtins.list[EventRow]: ...
    def of_kind(self, kind: str, *, before_seq: int | None = None,
                limit: int = 100) -> builtins.list[EventRow]:
        """Events of exactly this kind, newest first; ``before_seq`` pages on."""
        ...
    def head(self) -> ChainHead | None:
        """The stored chain head; ``None`` if its record is gone (only by tampering)."""
        ...


class Registry(Protocol):
    def latest(self, kind: str, name: str) -> DefinitionRow | None: ...
    def get(self, kind: str, name: str, version: int) -> DefinitionRow | None: ...
    def insert(self, row: DefinitionRow) -> None: ...
    def history(self, kind: str, name: str) -> builtins.list[DefinitionRow]: ...
    def all_latest(self, kind: str | None = None) -> builtins.list[DefinitionRow]: ...


class Bus(Protocol):
    def publish(self, topic: str, payload: Any, run_id: str | None, now: float) -> None: ...
    def pending(self, limit: int) -> builtins.list[BusMessage]: ...
    def mark_processed(self, ids: Sequence[int], now: float) -> None: ...


class SchedulerState(Protocol):
    def try_lead(self, name: str, owner: str, now: float, ttl: float) -> bool:
        """Take or renew the named leadership; true while this owner holds it."""
        ...
    def resign(self, name: str, owner: str) -> None: ...
    def cron_last(self, playbook: str, index: int) -> float | None: ...
    def cron_set(self, playbook: str, index: int, fired_at: float) -> None: ...
    def worker_seen(self, worker_id: str, info: dict[str, Any], now: float, *,
                    started_at: float | None = None, version: str | None = None) -> None:
        """Announce or renew a process; ``started_at`` and ``version`` are kept from the
        first beat that gave them."""
        ...
    def workers(self, since: float) -> builtins.list[dict[str, Any]]:
        """Processes seen since ``since``: ``id``, ``heartbeat_at``, ``started_at``,
        ``version``, ``drain_requested_at`` (None unless asked to drain), then ``info``."""
        ...
    def worker_gone(self, worker_id: str) -> None:
        """Forget a process that stopped cleanly (see :meth:`worker_seen`)."""
        ...
    def request_drain(self, worker_id: str, now: float) -> bool:
        """Ask a process to drain (the first request's time is kept); false if it has no
        row."""
        ...
    def drain_requested(self, worker_id: str) -> bool:
        """Whether someone asked this process to drain."""
        ...


class Secrets(Protocol):
    """Every change (``put``, a ``delete`` that found the row) gives the secrets a new
    ``stamp``, in the same transaction."""

    def put(self, name: str, ciphertext: str, now: float, actor: str) -> None: ...
    def get(self, name: str) -> SecretRow | None: ...
    def all(self) -> builtins.list[SecretRow]: ...
    def delete(self, name: str) -> bool: ...
    def stamp(self) -> str: ...


class Redaction(Protocol):
    """Where a store gets the redactor for what it writes (the secret service)."""

    def redactor(self, stamp: str,
                 rows: Callable[[], builtins.list[SecretRow]]) -> Callable[[str], str] | None:
        """Asked at the start of every write transaction with the secrets' current stamp;
        ``rows`` reads the secrets in that transaction. None: nothing to hide."""
        ...
    def last(self) -> Callable[[str], str] | None:
        """The redactor as last loaded (for reads, which write nothing)."""
        ...


class Costs(Protocol):
    def record(self, calls: Sequence[LLMCallRow]) -> None: ...
    def for_run(self, run_id: str) -> builtins.list[LLMCallRow]: ...
    def spent(self, since: float, *, playbook: str | None = None,
              run_id: str | None = None) -> float: ...
    def rollup(self, since: float) -> builtins.list[dict[str, Any]]: ...


class Cache(Protocol):
    def get(self, key: str) -> Any: ...
    def hit(self, key: str) -> None: ...
    def put(self, key: str, response: Any, now: float) -> None: ...


class Breakers(Protocol):
    def get(self, name: str) -> BreakerRow | None: ...
    def put(self, row: BreakerRow) -> None: ...
    def all(self) -> builtins.list[BreakerRow]: ...


class Facts(Protocol):
    def append(self, row: FactRow) -> int:
        """Add the next version (``row.version`` is ignored); returns its number."""
        ...
    def history(self, namespace: str, subject: str, key: str) -> builtins.list[FactRow]: ...
    def by_run(self, run_id: str) -> builtins.list[FactRow]: ...
    def latest(self, namespace_pattern: str, subject: str | None,
               limit: int) -> builtins.list[FactRow]:
        """The newest version of each fact whose namespace matches (SQL LIKE)."""
        ...
    def search(self, tokens: builtins.list[str], namespace_pattern: str, subject: str | None,
               at: float, k: int) -> builtins.list[tuple[FactRow, float]]:
        """Facts whose subject, key or value hold any token, as their version current at
        ``at`` (forgotten ones left out), with the full-text score, best first."""
        ...


class Documents(Protocol):
    def add(self, doc: NewDocument) -> int:
        """Store a new version (its chunks replace the current ones); returns it."""
        ...
    def history(self, namespace: str, doc_key: str) -> builtins.list[DocumentRow]:
        """Every version of one document, oldest first."""
        ...
    def latest(self, namespace_pattern: str, limit: int) -> builtins.list[DocumentRow]:
        """The newest version of each document in the matching namespaces, by name."""
        ...
    def keyword(self, tokens: builtins.list[str], namespace_pattern: str, k: int,
                where: ChunkFilter | None = None) -> builtins.list[ChunkRow]:
        """Best first by the store's full-text ranking, matching any token."""
        ...
    def keyword_context(self, tokens: builtins.list[str], namespace_pattern: str, k: int,
                        where: ChunkFilter | None = None) -> builtins.list[int]:
        """Chunk ids whose thread context (the chunk with its neighbours) matches, best
        first."""
        ...
    def thread(self, namespace: str, thread: str, lo: int, hi: int,
               around: int = 0) -> builtins.list[ThreadChunk]:
        """The current first chunks of a thread's documents at positions ``lo..hi`` and the
        ``around`` before and after them, in order."""
        ...
    def set_context(self, chunk: ThreadChunk, namespace: str, thread: str,
                    text: str) -> None:
        """Replace the keyword-only context chunk that stands for ``chunk``."""
        ...
    def vectors(self, model: str, after: int = 0,
                limit: int = 1_000_000) -> builtins.list[tuple[int, str, bytes]]:
        """(id, namespace, embedding) of current chunks after ``after`` with ``model``'s
        vectors, in id order."""
        ...
    def retired(self, after_document: int, upto: int) -> builtins.list[tuple[int, int]]:
        """(chunk id, retiring document id) of chunks up to ``upto`` that a document
        version newer than ``after_document`` replaced."""
        ...
    def chunks(self, ids: Sequence[int]) -> builtins.list[ChunkRow]:
        """The current chunks among ``ids`` (retired ones are left out)."""
        ...
    def embedding_model(self) -> EmbeddingModel | None:
        """The model memory's vectors come from; None before the first embedded write."""
        ...
    def use_model(self, model: str, dim: int) -> None:
        """Record ``model`` as the one memory's vectors come from. A store-side index is
        made anew, empty: a re-embed (``set_vectors``) fills it."""
        ...
    def stale(self, model: str, after: int, limit: int) -> builtins.list[tuple[int, str]]:
        """(id, text) of current chunks with no vector of ``model``, in id order."""
        ...
    def set_vectors(self, model: str, vectors: Sequence[tuple[int, bytes]]) -> None:
        """Give chunks their vector of ``model`` (a re-embed)."""
        ...
    def counts(self, model: str) -> tuple[int, int]:
        """(current chunks, those with a vector of ``model``)."""
        ...
    @property
    def index_name(self) -> str | None:
        """The store's own vector index ("pgvector 0.8.1"), or None: search in memory."""
        ...
    def nearest(self, vector: bytes, namespace_pattern: str,
                k: int) -> builtins.list[int] | None:
        """Current chunk ids nearest ``vector`` by the store's own index (namespace by SQL
        LIKE); None when the store has no index or it is not complete."""
        ...
    def reindex(self) -> int:
        """Rebuild the store's own index from the chunks' vectors; how many it holds."""
        ...


class Ledger(Protocol):
    """What a snapshot restore never rewinds: see ``soloist.store.ledger``."""

    def record(self, idempotency_key: str, status: str, result: Any, error: str | None,
               now: float) -> None: ...
    def dispatched(self, keys: Sequence[str]) -> dict[str, LedgerEntry]: ...
    def since(self, since: float, limit: int = 1000) -> builtins.list[LedgerEntry]: ...
    def version_mark(self, kind: str, name: str) -> int: ...
    def mark_version(self, kind: str, name: str, version: int) -> None: ...


class Changes(Protocol):
    """What was written after a point in time (what a restore to then forgets)."""

    def runs_created(self, since: float, limit: int) -> builtins.list[dict[str, Any]]: ...
    def runs_finished(self, since: float, limit: int) -> builtins.list[dict[str, Any]]: ...
    def facts(self, since: float, limit: int) -> builtins.list[dict[str, Any]]: ...
    def documents(self, since: float, limit: int) -> builtins.list[dict[str, Any]]: ...
    def renew_generation(self, generation: int) -> None: ...


class Transaction(Protocol):
    #: The deployment's clock, in epoch seconds: the one every lease and timer is read on
    #: (the database server's on PostgreSQL, the host's on SQLite).
    now: Callable[[], float]
    @property
    def runs(self) -> Runs: ...
    @property
    def steps(self) -> Steps: ...
    @property
    def intents(self) -> Intents: ...
    @property
    def approvals(self) -> Approvals: ...
    @property
    def events(self) -> Events: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def bus(self) -> Bus: ...
    @property
    def scheduler(self) -> SchedulerState: ...
    @property
    def secrets(self) -> Secrets: ...
    @property
    def costs(self) -> Costs: ...
    @property
    def cache(self) -> Cache: ...
    @property
    def breakers(self) -> Breakers: ...
    @property
    def facts(self) -> Facts: ...
    @property
    def documents(self) -> Documents: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def changes(self) -> Changes: ...
    @property
    def cursors(self) -> Cursors: ...
    @property
    def buckets(self) -> Buckets: ...
    @property
    def inbound(self) -> Inbound: ...
    @property
    def tokens(self) -> Tokens: ...
    @property
    def measures(self) -> Measures: ...
    @property
    def waits(self) -> Waits: ...
    @property
    def clock(self) -> Clock: ...

    def notify_ready(self) -> None:
        """Wake waiting workers once this transaction commits."""
        ...


class Store(Protocol):
    url: str
    #: True when other processes cannot wake this one, so workers must also poll.
    polls: bool
    #: Its redactor is applied to every text the store writes (events, outputs, errors,
    #: intents): replaces secret values by their names. None: nothing to hide.
    redaction: Redaction | None

    def now(self) -> float:
        """The deployment's clock in epoch seconds: every lease, backoff, timeout,
        deadline, cron fire and heartbeat is written and compared on it, never on one
        host's own clock (the database server's on PostgreSQL, see ``store.clock``)."""
        ...
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction. A StoreError raised inside dooms it: leave the block."""
        ...
    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only snapshot; it must not write (PostgreSQL refuses, SQLite discards)."""
        ...
    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) whenever a commit made steps ready."""
        ...
    def remove_listener(self, callback: Callable[[], None]) -> None: ...
    def wake(self) -> None: ...
    def try_scheduler_lock(self, owner: str) -> bool:
        """Hold the single-scheduler lock for this process; false if another holds it."""
        ...
    def release_scheduler_lock(self, owner: str) -> None: ...
    def backup(self, path: Path) -> None:
        """Write a consistent copy of the whole store to ``path`` (workers may run)."""
        ...
    def restore(self, path: Path) -> None:
        """Replace the whole store's content with the copy at ``path``."""
        ...
    def close(self) -> None: ...
