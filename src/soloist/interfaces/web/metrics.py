"""``/measures``: the five measures over a window, as numbers (overall and per playbook)
and per day as bars (``/metrics`` is for Prometheus, ``/api/v1/metrics`` the figures)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from soloist.interfaces.web import charts
from soloist.interfaces.web.pages import PageRoute, render, viewer, workspace

router = APIRouter(route_class=PageRoute, include_in_schema=False)
#: the per-day figures drawn, each as bars
SERIES = ("done", "failed", "completion_rate", "cost_usd", "interventions")


def _scalars(figures: dict[str, Any]) -> list[tuple[str, Any]]:
    """The single figures, in the order the workspace gives them."""
    return [(k.replace("_", " "), v) for k, v in figures.items()
            if k != "days" and (v is None or isinstance(v, int | float | str))]


@router.get("/measures", response_class=HTMLResponse)
def metrics(request: Request, days: Annotated[int, Query(ge=1, le=90)] = 7) -> HTMLResponse:
    viewer(request)
    ws = workspace(request)
    figures = ws.metrics(days)
    series: dict[str, list[tuple[str, float]]] = {key: [] for key in SERIES}
    for day in ws.metrics_series(days):
        for key, points in series.items():
            points.append((str(day["day"])[5:], float(day.get(key) or 0.0)))
    return render(request, "metrics.html", days=days, figures=figures,
                  scalars=_scalars(figures), by_state=figures.get("runs", {}),
                  by_playbook=figures.get("by_playbook", []),
                  charts={state: charts.bars(points, css=state)
                          for state, points in series.items()})
