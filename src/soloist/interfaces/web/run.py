"""``/runs/{id}``: one run: a timeline of its steps, each step's output, its intents and
what dispatching them gave, its gates and the decisions, its cost, and what its agents
saw and did; the live part refreshes while the run moves, and its log is read a page at
a time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soloist.interfaces.web import charts
from soloist.interfaces.web.pages import (
    FormFields,
    PageRoute,
    digest,
    render,
    unchanged,
    viewer,
    workspace,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LOG_PAGE = 100
#: events that show what an agent saw and did, drawn in full on the run's page
AGENT_EVENTS = ("context.built", "tool.call", "policy.decision", "tool.staged",
                "tool.refused", "agent.output", "agent.verdict", "agent.invalid_output",
                "llm.call", "agent.fallback")
ENDED = ("done", "failed", "cancelled")


def _live(request: Request, run_id: str) -> dict[str, Any]:
    ws = workspace(request)
    detail = ws.show(run_id)
    costs = ws.costs(run_id)
    attempts = {s.step_id: s.attempt for s in detail.steps}
    seen = digest(detail.run.state, [(s.step_id, s.state, s.attempt) for s in detail.steps],
                  [(i.idempotency_key, i.status) for i in detail.intents],
                  [(a.id, a.decision) for a in detail.approvals], len(costs))
    return {"detail": detail, "run": detail.run, "costs": costs,
            "cost_usd": sum(c.cost_usd for c in costs), "seen": seen,
            "timeline": charts.timeline(detail.steps, attempts),
            "ended": detail.run.state in ENDED,
            "intents_of": {s.step_id: [i for i in detail.intents if i.step_id == s.step_id]
                           for s in detail.steps}}


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str,
             after: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
    viewer(request)
    live = _live(request, run_id)
    events = workspace(request).log(run_id=run_id, after=after, limit=LOG_PAGE)
    more = events[-1].seq if len(events) == LOG_PAGE else None
    agents: dict[str, list[Any]] = {}
    for event in events:
        if event.kind in AGENT_EVENTS and event.step_id is not None:
            agents.setdefault(event.step_id, []).append(event)
    return render(request, "run.html", events=events, after=after, more=more,
                  agents=agents, **live)


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
def run_live(request: Request, run_id: str) -> Response:
    """The part of the run's page that moves: nothing if it did not."""
    viewer(request)
    live = _live(request, run_id)
    if request.query_params.get("seen") == live["seen"]:
        return unchanged()
    return render(request, "_run_live.html", **live)


@router.post("/runs/{run_id}/retry")
def retry(request: Request, form: FormFields, run_id: str) -> Response:
    """Go on with a failed run from its failed steps (its done steps stay done)."""
    principal = viewer(request, "run")
    workspace(request).retry_run(run_id, principal.actor)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, form: FormFields, run_id: str) -> Response:
    principal = viewer(request, "run")
    workspace(request).cancel(run_id, principal.actor)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
