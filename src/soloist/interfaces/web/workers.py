"""``/workers``: the live worker processes, the steps in their hands, and which drain
(``soloist workers drain`` asks one to)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from soloist.interfaces.web.pages import PageRoute, render, viewer, workspace

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/workers", response_class=HTMLResponse)
def workers(request: Request) -> HTMLResponse:
    viewer(request)
    return render(request, "workers.html", workers=workspace(request).workers())
