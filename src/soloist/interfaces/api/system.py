"""The log and its live stream, the measures, the connectors, the audit, and webhooks in."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Reader, workspace
from soloist.store.base import EventRow

if TYPE_CHECKING:
    from soloist.workspace import Workspace

router = APIRouter(tags=["system"])
#: how often the live stream looks for new events, and how often it says it is alive
STREAM_POLL = 0.05
HEARTBEAT = 15.0
#: the largest webhook body taken, in bytes: webhooks are small
MAX_HOOK_BODY = 1024 * 1024


def _matches(event: Any, kind: str | None, actor: str | None) -> bool:
    if actor is not None and event.actor != actor:
        return False
    if kind is None or not kind.endswith("*"):
        return kind is None or event.kind == kind
    return bool(event.kind.startswith(kind[:-1]))


@router.get("/api/v1/events", response_model=schemas.EventsPage)
def events(request: Request, principal: Reader, run_id: str | None = None,
           kind: Annotated[str | None, Query(max_length=100,
                                             description="a kind, or a prefix: step.*")]
           = None,
           actor: Annotated[str | None, Query(max_length=200)] = None,
           after: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> schemas.EventsPage:
    """The episodic log, oldest first from ``after``; ``next_after`` continues it (it moves
    past events the filters left out, so a filtered page may be short)."""
    rows = workspace(request).log(run_id=run_id, after=after, limit=limit)
    kept = [schemas.Event.model_validate(e) for e in rows if _matches(e, kind, actor)]
    return schemas.EventsPage(events=kept, next_after=rows[-1].seq if rows else after)


def _page(ws: Workspace, run_id: str | None, after: int) -> list[EventRow]:
    return ws.log(run_id=run_id, after=after, limit=500)


@router.get("/api/v1/events/stream",
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "Server-Sent Events, one per log event"}})
async def stream(request: Request, principal: Reader, run_id: str | None = None,
                 kind: Annotated[str | None, Query(max_length=100)] = None,
                 after: Annotated[int | None, Query(ge=0, description="default: from now")]
                 = None) -> StreamingResponse:
    """New events as Server-Sent Events (``id`` is the seq: a reconnecting client's
    ``Last-Event-ID`` continues where it stopped)."""
    ws = workspace(request)
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() else after
    if start is None:
        start = await anyio.to_thread.run_sync(ws.log_head)
    if run_id is not None:
        await anyio.to_thread.run_sync(ws.get_run, run_id)  # 404 before the stream opens

    async def feed() -> AsyncIterator[str]:
        seq = start
        quiet = 0.0
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            rows = await anyio.to_thread.run_sync(_page, ws, run_id, seq)
            for event in rows:
                seq = event.seq
                if _matches(event, kind, None):
                    data = schemas.Event.model_validate(event).model_dump_json()
                    yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
            if rows:
                quiet = 0.0
                continue
            await asyncio.sleep(STREAM_POLL)
            quiet += STREAM_POLL
            if quiet >= HEARTBEAT:
                quiet = 0.0
                yield ": alive\n\n"

    return StreamingResponse(feed(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _plain(value: Any) -> Any:
    """JSON as it is sent (a NaN or a dataclass as text), so the model check is of what goes
    out."""
    return json.loads(json.dumps(value, default=str))


@router.get("/api/v1/metrics", response_model=dict[str, Any])
def metrics(request: Request, principal: Reader,
            days: Annotated[float, Query(gt=0, le=3650)] = 30.0,
            playbook: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """The five measures over the runs created in the last ``days`` (of one playbook)."""
    figures: dict[str, Any] = _plain(workspace(request).metrics(days, playbook))
    return figures


@router.get("/api/v1/metrics/series", response_model=list[dict[str, Any]])
def metrics_series(request: Request, principal: Reader,
                   days: Annotated[float, Query(gt=0, le=3650)] = 30.0,
                   playbook: Annotated[str | None, Query(max_length=200)] = None
                   ) -> list[dict[str, Any]]:
    """The measures per day (for charts)."""
    series: list[dict[str, Any]] = _plain(workspace(request).metrics_series(days, playbook))
    return series


@router.get("/metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "the Prometheus text exposition format"}})
def prometheus(request: Request, principal: Reader) -> PlainTextResponse:
    """The measures, queue depth, steps in flight, breakers and step durations in the
    Prometheus text format (scrape it with a read token)."""
    return PlainTextResponse(workspace(request).prometheus_metrics(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/v1/connectors", response_model=list[dict[str, Any]])
def connectors(request: Request, principal: Reader) -> list[dict[str, Any]]:
    """Each connector's health, bucket, breaker, cursors and backlog."""
    return [s.as_dict() for s in workspace(request).connector_status()]


@router.get("/api/v1/audit/verify", response_model=dict[str, Any])
def verify(request: Request, principal: Reader) -> dict[str, Any]:
    """Check the episodic log's hash chain end to end."""
    report = workspace(request).verify()
    out = dataclasses.asdict(report)
    out.pop("head", None)
    return out


@router.post("/hooks/{name}", include_in_schema=False)
async def hook(request: Request, name: str) -> JSONResponse:
    """A webhook delivery: its signature is its authentication (checked by the
    connector), and it is acknowledged only once stored."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_HOOK_BODY:
        return JSONResponse({"error": f"the body is larger than {MAX_HOOK_BODY} bytes"}, 413)
    body = await request.body()
    if len(body) > MAX_HOOK_BODY:
        return JSONResponse({"error": f"the body is larger than {MAX_HOOK_BODY} bytes"}, 413)
    ws = workspace(request)
    reply = await anyio.to_thread.run_sync(
        lambda: ws.receive_webhook(name, dict(request.headers.items()), body))
    return JSONResponse(reply.body, reply.status, reply.headers)
