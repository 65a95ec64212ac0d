"""The HTTP API as one ASGI app over a :class:`~soloist.workspace.Workspace`: every route
calls the workspace's service methods, as the CLI does; nothing here talks to the store.

Routes are sync functions (FastAPI runs them in its thread pool), since the workspace's
methods block on the store; only the live stream is async.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from soloist.interfaces.api import (
    approvals,
    errors,
    memory,
    overrides,
    registry,
    runs,
    schemas,
    session,
    system,
    workers,
)
from soloist.interfaces.api.auth import Throttle
from soloist.interfaces.web import install as install_dashboard

if TYPE_CHECKING:
    from soloist.workspace import Workspace

API_PREFIX = "/api/v1"
#: what any route may answer besides its own result: the one error shape
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": schemas.ErrorBody, "description": text} for status, text in (
        (401, "no valid token or session"), (403, "the token lacks the scope"),
        (404, "no such thing"), (409, "not in this state"), (422, "the request is invalid"),
        (429, "too many failed sign-ins: wait"), (503, "the store is busy: try again"))}


def create_app(ws: Workspace) -> FastAPI:
    app = FastAPI(title="Soloist", version="1", openapi_url=f"{API_PREFIX}/openapi.json",
                  docs_url=f"{API_PREFIX}/docs", redoc_url=None,
                  description="The workspace's HTTP API: runs, approvals, memory, the "
                              "registry, the log and the measures. Every call needs a "
                              "bearer token (`soloist token create NAME --scope read`).",
                  responses=ERRORS)
    app.state.ws = ws
    app.state.throttle = Throttle()
    errors.install(app)
    for module in (runs, approvals, overrides, registry, memory, system, session,
                   workers):
        app.include_router(module.router)
    _mount_mcp(app, ws)
    install_dashboard(app)
    return app


def _mount_mcp(app: FastAPI, ws: Workspace) -> None:
    """MCP over streamable HTTP at ``/mcp`` (bearer tokens, as the API), when the ``mcp``
    package is installed (``pip install soloist[mcp]``)."""
    try:
        from soloist.interfaces.mcp.http import build_http_app
    except ImportError:  # the API and the dashboard serve without it
        return
    app.mount("/mcp", build_http_app(ws))
