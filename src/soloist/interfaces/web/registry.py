"""``/registry``: playbooks, agents and policies with their versions and who deployed
them, the diff between two versions, and rollback (admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soloist.errors import InputError
from soloist.interfaces.web.pages import FormFields, PageRoute, field, render, viewer, workspace

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Kind = Literal["playbook", "agent", "policies"]


@router.get("/registry", response_class=HTMLResponse)
def registry(request: Request) -> HTMLResponse:
    viewer(request)
    rows = sorted(workspace(request).definitions(), key=lambda d: (d.kind, d.name))
    return render(request, "registry.html", definitions=rows)


@router.get("/registry/{kind}/{name}", response_class=HTMLResponse)
def versions(request: Request, kind: Kind, name: str,
             old: Annotated[int | None, Query(ge=1, alias="from")] = None,
             new: Annotated[int | None, Query(ge=1, alias="to")] = None) -> HTMLResponse:
    viewer(request)
    ws = workspace(request)
    history = ws.history(kind, name)
    newest = history[-1].version
    new = new or newest
    old = old or max(1, new - 1)
    diff = ws.diff(kind, name, old, new).splitlines() if old != new else []
    return render(request, "definition.html", kind=kind, name=name, history=history,
                  old=old, new=new, diff=diff, newest=newest)


@router.post("/registry/{kind}/{name}/rollback")
def rollback(request: Request, form: FormFields, kind: Kind, name: str) -> Response:
    principal = viewer(request, "admin")
    version = field(form, "version")
    if not version.isdigit():
        raise InputError(f"the version to roll back to must be a whole number, not "
                         f"{version!r}")
    workspace(request).rollback(kind, name, int(version), principal.actor)
    return RedirectResponse(f"/registry/{kind}/{name}", status_code=303)
