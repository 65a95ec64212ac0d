"""``/runs``: the runs list with the API's filters as a GET form, so a filtered list is
a URL (shareable, kept on reload and back/forward), a page at a time; its rows refresh
while it is open."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from soloist.errors import InputError
from soloist.interfaces.web.pages import (
    FormFields,
    PageRoute,
    digest,
    field,
    render,
    unchanged,
    viewer,
    workspace,
)
from soloist.store.base import RunFilter
from soloist.workspace.listing import RunsPage

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FILTERS = ("state", "playbook", "version", "since", "until", "q")
PAGE = 50


def _moment(name: str, text: str) -> float | None:
    """A date (YYYY-MM-DD, UTC), a date and time, or epoch seconds."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} must be a date like 2026-01-31, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if name == "until" and len(text) == len("2026-01-31"):
        moment += dt.timedelta(days=1)  # "until" a day includes that day
    return moment.timestamp()


def chosen(request: Request) -> dict[str, str]:
    """The filters as given (empty ones left out), as the form shows them again."""
    return {k: request.query_params.get(k, "").strip() for k in FILTERS
            if request.query_params.get(k, "").strip()}


def run_filter(given: dict[str, str]) -> RunFilter:
    version = given.get("version")
    if version is not None and not version.isdigit():
        raise InputError(f"version must be a whole number, not {version!r}")
    return RunFilter(state=given.get("state"), playbook=given.get("playbook"),
                     version=int(version) if version else None,
                     since=_moment("since", given.get("since", "")),
                     until=_moment("until", given.get("until", "")),
                     text=given.get("q"))


def _page(request: Request) -> tuple[dict[str, str], str | None, RunsPage]:
    viewer(request)
    given = chosen(request)
    cursor = request.query_params.get("cursor") or None
    return given, cursor, workspace(request).runs_page(run_filter(given), cursor, PAGE)


def _rows(page: RunsPage) -> str:
    return digest([(r.id, r.state, r.steps_remaining) for r in page.runs], page.next_cursor)


def _context(given: dict[str, str], cursor: str | None, page: RunsPage) -> dict[str, Any]:
    query = urlencode({**given, **({"cursor": cursor} if cursor else {})})
    return {"given": given, "page": page, "seen": _rows(page),
            "query": query, "next": urlencode({**given, "cursor": page.next_cursor})
            if page.next_cursor else None, "first": urlencode(given)}


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request) -> HTMLResponse:
    given, cursor, page = _page(request)
    counts = {}
    for state in ("running", "failed"):
        if given.get("state") in (None, state):
            match = run_filter({**given, "state": state})
            counts[state] = workspace(request).runs_page(match, limit=1, count=True).total
    return render(request, "runs.html", states=STATES, running=counts.get("running"),
                  failed=counts.get("failed"), **_context(given, cursor, page))


@router.post("/runs/cancel")
def cancel_matching(request: Request, form: FormFields) -> Response:
    """Cancel the running runs the filters match, once the person typed how many they
    are (the count the page showed: if more match by now, nothing is cancelled)."""
    return _bulk(request, form, "running")


@router.post("/runs/retry")
def retry_matching(request: Request, form: FormFields) -> Response:
    """Retry the failed runs the filters match from their failed steps, as above."""
    return _bulk(request, form, "failed")


def _bulk(request: Request, form: FormData, state: str) -> Response:
    principal = viewer(request, "run")
    given = {k: field(form, k) for k in FILTERS if field(form, k)}
    typed = field(form, "confirm")
    if not typed.isdigit():
        raise InputError("type the number of runs, as the page shows it")
    ws = workspace(request)
    act = ws.cancel_matching if state == "running" else ws.retry_matching
    done, skipped = act(run_filter({**given, "state": state}), int(typed), principal.actor)
    if skipped:
        return render(request, "error.html", 409, title="Some could not be",
                      message=f"{len(done)} done; "
                              + "; ".join(f"{r}: {why}" for r, why in skipped.items()))
    back = urlencode({k: v for k, v in given.items() if k != "state"})
    return RedirectResponse(f"/runs?{back}", status_code=303)


@router.get("/runs/rows", response_class=HTMLResponse)
def rows(request: Request) -> Response:
    """The table alone, for the page's refresh: nothing if it did not change."""
    given, cursor, page = _page(request)
    if request.query_params.get("seen") == _rows(page):
        return unchanged()
    return render(request, "_runs_table.html", **_context(given, cursor, page))


STATES = ("running", "done", "failed", "cancelled", "compensating")
