"""``/``: what needs me: approvals waiting (oldest first), runs that failed in the last
day, connectors whose breaker is open, and today's spend against the budgets."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from soloist.interfaces.api.session import logout
from soloist.interfaces.web.pages import FormFields, PageRoute, render, viewer, workspace
from soloist.store.base import RunFilter

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DAY = 86400.0


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    viewer(request)
    ws = workspace(request)
    now = time.time()
    waiting = sorted(ws.approvals(), key=lambda p: p.approval.created_at)
    failed = ws.runs_page(RunFilter(state="failed", since=now - DAY), limit=20).runs
    broken = [c for c in ws.connector_status() if c.health in ("open", "half_open")]
    today = ws.metrics(1)
    budgets = ws.settings.budgets
    playbook_budgets = budgets.playbook_daily_usd
    return render(request, "home.html", now=now, waiting=waiting, failed=failed,
                  broken=broken, spend=today["cost_usd"], by_playbook=today["by_playbook"],
                  workspace_budget=budgets.workspace_daily_usd,
                  playbook_budgets=playbook_budgets)


@router.post("/signout")
def sign_out(request: Request, form: FormFields) -> Response:
    """The nav's sign-out form: the API's ``POST /logout``, with the CSRF token read from
    the form (that route reads only the header)."""
    return logout(request)
