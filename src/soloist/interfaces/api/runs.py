"""``/api/v1/runs``: list (filters, cursor pages), detail, start, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Reader, Runner, workspace
from soloist.store.base import RunFilter

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
RunStateName = Literal["running", "compensating", "done", "failed", "cancelled"]


@router.get("", response_model=schemas.RunsPage)
def list_runs(
        request: Request, principal: Reader,
        state: RunStateName | None = None,
        playbook: str | None = None,
        version: Annotated[int | None, Query(ge=1)] = None,
        since: Annotated[float | None, Query(description="created at or after (epoch s)")]
        = None,
        until: Annotated[float | None, Query(description="created before (epoch s)")] = None,
        q: Annotated[str | None, Query(max_length=200, description="text in the inputs or "
                                                                    "the error")] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        count: bool = False) -> Response:
    """Runs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    page = workspace(request).runs_page(
        RunFilter(state=state, playbook=playbook, version=version, since=since, until=until,
                  text=q or None), cursor, limit, count=count)
    return schemas.respond({"runs": [schemas.Run.of(r) for r in page.runs],
                            "next_cursor": page.next_cursor, "total": page.total})


@router.post("", response_model=schemas.Started, status_code=201)
def start_run(request: Request, principal: Runner, body: schemas.StartRun) -> schemas.Started:
    """Start a run of a deployed playbook; its inputs are checked against its schema."""
    run_id = workspace(request).start(body.playbook, body.inputs, actor=principal.actor,
                                      priority=body.priority)
    return schemas.Started(run_id=run_id)


@router.post("/cancel", response_model=schemas.BulkResult)
def cancel_runs(request: Request, principal: Runner,
                body: schemas.BulkCancel) -> schemas.BulkResult:
    """Cancel every running run the filters match, when they are exactly
    ``confirm_count`` runs (409 otherwise, and nothing is cancelled)."""
    cancelled, skipped = workspace(request).cancel_matching(
        RunFilter(playbook=body.playbook, version=body.version, since=body.since,
                  until=body.until, text=body.q or None), body.confirm_count, principal.actor)
    return schemas.BulkResult(runs=cancelled, skipped=skipped)


@router.post("/retry", response_model=schemas.BulkResult)
def retry_runs(request: Request, principal: Runner,
               body: schemas.BulkCancel) -> schemas.BulkResult:
    """Retry every failed run the filters match from its failed steps, when they are
    exactly ``confirm_count`` runs (409 otherwise, and nothing is retried); ``skipped``
    says which could not be (one that compensated)."""
    retried, skipped = workspace(request).retry_matching(
        RunFilter(playbook=body.playbook, version=body.version, since=body.since,
                  until=body.until, text=body.q or None), body.confirm_count, principal.actor)
    return schemas.BulkResult(runs=retried, skipped=skipped)


@router.get("/{run_id}", response_model=schemas.RunDetail)
def get_run(request: Request, principal: Reader, run_id: str) -> Response:
    """A run with its steps, intents, approvals and model costs."""
    ws = workspace(request)
    detail = ws.show(run_id)
    costs = ws.costs(run_id)
    return schemas.respond({
        "run": schemas.Run.of(detail.run),
        "steps": [schemas.Step.of(s) for s in detail.steps],
        "intents": [schemas.Intent.of(i) for i in detail.intents],
        "approvals": [schemas.Approval.of(a) for a in detail.approvals],
        "costs": [schemas.Cost.of(c) for c in costs],
        "cost_usd": sum(c.cost_usd for c in costs)})


@router.post("/{run_id}/cancel", response_model=schemas.Run)
def cancel_run(request: Request, principal: Runner, run_id: str) -> schemas.Run:
    """Cancel a running run: its dispatched steps are compensated, its gates closed."""
    return schemas.Run.model_validate(workspace(request).cancel(run_id, principal.actor))


@router.post("/{run_id}/retry", response_model=schemas.Run)
def retry_run(request: Request, principal: Runner, run_id: str) -> schemas.Run:
    """Go on with a failed run from its failed steps (its done steps stay done); 409 for a
    run that is not failed, or that undid its steps when it failed."""
    return schemas.Run.model_validate(workspace(request).retry_run(run_id, principal.actor))


@router.get("/{run_id}/events", response_model=schemas.EventsPage)
def run_events(request: Request, principal: Reader, run_id: str,
               after: Annotated[int, Query(ge=0)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> schemas.EventsPage:
    """The run's part of the episodic log, a page at a time (``after`` a seq)."""
    rows = workspace(request).log(run_id=run_id, after=after, limit=limit)
    return schemas.EventsPage(events=[schemas.Event.model_validate(e) for e in rows],
                              next_after=rows[-1].seq if rows else after)
