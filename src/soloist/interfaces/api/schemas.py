"""What the API takes and answers, as pydantic models: the OpenAPI document is made from
them, and a response that does not match its model is a bug the fuzzing tests find.

Rows from the store are read by attribute (``from_attributes``), so a model lists exactly
the fields a client sees; JSON values a user or an agent wrote (inputs, outputs, intent
arguments, fact values) stay free-form.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    @classmethod
    def of(cls, row: object) -> dict[str, Any]:
        """A row from the store as this model's JSON object: its fields read by attribute,
        not validated again (the store's rows are typed already; the fuzzing tests check
        that what goes out matches the schema). Building a model per row would cost more
        than reading the rows."""
        return {name: getattr(row, name) for name in cls.model_fields}


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def respond(content: Any) -> Response:
    """``content`` (JSON values, as :meth:`Model.of` makes) as the response, written once:
    FastAPI would validate it against the route's model again, then write it."""
    return Response(_ENCODER.encode(content), media_type="application/json")


class ErrorDetail(Model):
    kind: str
    message: str
    field: str | None = None


class ErrorBody(Model):
    error: ErrorDetail


class Run(Model):
    id: str
    playbook: str
    playbook_version: int
    state: str
    inputs: Any
    priority: int
    created_at: float
    finished_at: float | None
    deadline_at: float | None
    error: str | None
    created_by: str
    final_state: str | None = None


class RunsPage(Model):
    runs: list[Run]
    #: give it back as ``cursor`` for the next page; null on the last
    next_cursor: str | None
    total: int | None = None


class Step(Model):
    step_id: str
    kind: str
    position: int
    state: str
    attempt: int
    output: Any
    error: str | None
    guidance: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class Intent(Model):
    step_id: str
    idx: int
    idempotency_key: str
    tool: str
    args: Any
    description: str
    status: str
    result: Any
    error: str | None
    created_at: float
    dispatched_at: float | None


class Approval(Model):
    id: str
    run_id: str
    step_id: str
    attempt: int
    reason: str
    message: str
    created_at: float
    expires_at: float | None
    default_decision: str | None
    decision: str | None
    decided_by: str | None
    decided_at: float | None
    note: str | None


class Cost(Model):
    step_id: str | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float
    cached: bool
    created_at: float


class RunDetail(Model):
    run: Run
    steps: list[Step]
    intents: list[Intent]
    approvals: list[Approval]
    costs: list[Cost]
    cost_usd: float


class StartRun(Model):
    playbook: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    priority: int | None = None


class BulkCancel(Model):
    """Which runs to cancel or retry (the list's filters) and how many the person saw."""

    playbook: str | None = None
    version: int | None = Field(default=None, ge=1)
    since: float | None = None
    until: float | None = None
    q: str | None = Field(default=None, max_length=200)
    confirm_count: int = Field(ge=0)


class BulkResult(Model):
    #: the runs acted on (cancelled, or retried)
    runs: list[str]
    #: runs that could not be (ended by themselves meanwhile; compensated), with why
    skipped: dict[str, str]


class Started(Model):
    run_id: str


class PendingApproval(Model):
    approval: Approval
    playbook: str
    intents: list[Intent]
    output: Any
    dispatched: list[str]


class IntentEdit(Model):
    """New arguments for one staged intent (by its index), checked against its tool."""

    idx: int = Field(ge=0)
    args: dict[str, Any]


class Decision(Model):
    note: str | None = Field(default=None, max_length=10_000)
    #: edit then approve: the person's changes, kept beside the original in the log
    edits: list[IntentEdit] = Field(default_factory=list, max_length=100)


class Rejection(Model):
    reason: str = Field(min_length=1, max_length=10_000)


class Guidance(Model):
    guidance: str = Field(min_length=1, max_length=10_000)


class BatchApproval(Model):
    ids: list[str] = Field(min_length=1, max_length=500)
    note: str | None = Field(default=None, max_length=10_000)


class BatchResult(Model):
    decided: list[Approval]
    refused: dict[str, ErrorDetail]


class Event(Model):
    seq: int
    ts: float
    kind: str
    run_id: str | None
    step_id: str | None
    actor: str
    data: Any


class EventsPage(Model):
    events: list[Event]
    #: the seq to pass as ``after`` for the next page
    next_after: int


class Definition(Model):
    kind: str
    name: str
    version: int
    digest: str
    source: str | None
    deployed_by: str
    deployed_at: float
    note: str | None


class DefinitionBody(Definition):
    body: Any


class Diff(Model):
    old: int
    new: int
    diff: str


class Rollback(Model):
    version: int = Field(ge=1)


class Fact(Model):
    namespace: str
    subject: str
    key: str
    version: int
    op: str
    value: Any
    actor: str
    reason: str
    run_id: str | None
    step_id: str | None
    reverts: int | None
    valid_from: float
    valid_to: float | None
    expires_at: float | None
    recorded_at: float
    sources: list[dict[str, Any]] | None = None  # what it was drawn from (provenance)


class PutFact(Model):
    value: Any
    reason: str = Field(min_length=1, max_length=10_000)


class RevertFact(Model):
    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=10_000)


class Why(Model):
    version: Fact
    events: list[Event]


class Document(Model):
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


class Hit(Model):
    model_config = ConfigDict(extra="allow")

    kind: str
    namespace: str
    key: str
    text: str
    score: float
