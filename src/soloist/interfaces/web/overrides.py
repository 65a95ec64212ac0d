"""``/overrides``: the edits a person made to drafts at gates, each with what it was, what
it became and why, and the agent steps whose later drafts see it as an example."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from soloist.interfaces.web.pages import PageRoute, render, viewer, workspace

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/overrides", response_class=HTMLResponse)
def overrides(request: Request,
              agent: Annotated[str | None, Query(max_length=200)] = None,
              playbook: Annotated[str | None, Query(max_length=200)] = None,
              step: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    viewer(request)
    found = workspace(request).overrides(agent=agent or None, playbook=playbook or None,
                                         step=step or None, limit=100)
    for item in found:
        before, after = item["before"], item["after"]
        if isinstance(before, dict) and isinstance(after, dict):
            item["changed"] = [k for k in dict.fromkeys([*before, *after])
                               if before.get(k) != after.get(k)]
        else:
            item["changed"] = []
    return render(request, "overrides.html", overrides=found, agent=agent or "",
                  playbook=playbook or "", step=step or "")
