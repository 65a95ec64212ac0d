"""``/metrics`` (the page; the API serves the figures): the measures over a window, as
numbers, and runs ended per day as bars."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from soloist.interfaces.web import charts
from soloist.interfaces.web.pages import PageRoute, render, viewer, workspace
from soloist.store.base import RunFilter

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DAY = 86400


def _scalars(figures: dict[str, Any]) -> list[tuple[str, Any]]:
    """The single figures, in the order the workspace gives them."""
    return [(k.replace("_", " "), v) for k, v in figures.items()
            if k != "days" and (v is None or isinstance(v, int | float | str))]


@router.get("/metrics", response_class=HTMLResponse)
def metrics(request: Request, days: Annotated[int, Query(ge=1, le=90)] = 7) -> HTMLResponse:
    viewer(request)
    ws = workspace(request)
    figures = ws.metrics(days)
    today = int(time.time() // DAY) * DAY
    series: dict[str, list[tuple[str, float]]] = {"done": [], "failed": []}
    for back in range(days - 1, -1, -1):
        start = today - back * DAY
        label = time.strftime("%m-%d", time.gmtime(start))
        for state, points in series.items():
            page = ws.runs_page(RunFilter(state=state, since=start, until=start + DAY),
                                limit=1, count=True)
            points.append((label, float(page.total or 0)))
    return render(request, "metrics.html", days=days, figures=figures,
                  scalars=_scalars(figures), by_state=figures.get("runs", {}),
                  by_playbook=figures.get("by_playbook", []),
                  charts={state: charts.bars(points, css=state)
                          for state, points in series.items()})
