"""What every route takes: the workspace, and the principal with the scope it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from soloist.control.access import Principal
from soloist.interfaces.api.auth import need

if TYPE_CHECKING:
    from soloist.workspace import Workspace


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


Reader = Annotated[Principal, Depends(need("read"))]
Runner = Annotated[Principal, Depends(need("run"))]
Approver = Annotated[Principal, Depends(need("approve"))]
Admin = Annotated[Principal, Depends(need("admin"))]
