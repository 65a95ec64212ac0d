"""``/measures``: the five measures over a window, as numbers (overall and per playbook)
and per day as bars (``/metrics`` is for Prometheus, ``/api/v1/metrics`` the figures)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from soloist.interfaces.web import charts
from soloist.interfaces.web.pages import PageRoute, render, span, viewer, workspace

router = APIRouter(route_class=PageRoute, include_in_schema=False)
NONE = "\u2013"  # an en dash: no value yet
#: the per-day figures drawn, each as bars
SERIES = ("done", "failed", "completion_rate", "cost_usd", "interventions")


def _measures(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The five measures as a person reads them: name, value, and what it counts."""
    def pct(v: Any) -> str:
        return NONE if v is None else f"{100 * v:.1f}%"

    def usd(v: Any) -> str:
        return NONE if v is None else f"${v:.4f}"

    def took(v: Any) -> str:
        return NONE if v is None else span(v)

    per100 = figures.get("human_interventions_per_100_runs")
    kinds = figures.get("interventions") or {}
    counted = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) if isinstance(
        kinds, dict) else str(kinds)
    return [
        ("Completion rate", pct(figures.get("completion_rate")),
         f"{figures.get('done', 0)} done of {figures.get('ended', 0)} ended"),
        ("Mean time to recovery", took(figures.get("mean_time_to_recovery_s")),
         f"{figures.get('recoveries', 0)} recovered, {figures.get('unrecovered', 0)} not"),
        ("Human interventions per 100 runs", NONE if per100 is None else f"{per100:.1f}",
         f"{counted or 'none'} over {figures.get('started', 0)} runs"),
        ("Cost per successful outcome", usd(figures.get("cost_per_successful_outcome_usd")),
         f"{usd(figures.get('cost_usd'))} in all"),
        ("Change lead time", took(figures.get("change_lead_time_s")),
         f"latest {took(figures.get('latest_change_lead_time_s'))}, over "
         f"{len(figures.get('changes') or [])} changes"),
    ]


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
                  measures=_measures(figures), by_state=figures.get("runs", {}),
                  by_playbook=figures.get("by_playbook", []),
                  charts={state: charts.bars(points, css=state)
                          for state, points in series.items()})
