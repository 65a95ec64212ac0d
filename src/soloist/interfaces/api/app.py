"""The HTTP API as one ASGI app over a :class:`~soloist.workspace.Workspace`: every route
calls the workspace's service methods, as the CLI does; nothing here talks to the store.

Routes are sync functions (FastAPI runs them in its thread pool), since the workspace's
methods block on the store; only the live stream is async.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from soloist.interfaces.api import approvals, errors, memory, registry, runs, session, system
from soloist.interfaces.api.auth import Throttle
from soloist.interfaces.web import install as install_dashboard

if TYPE_CHECKING:
    from soloist.workspace import Workspace

API_PREFIX = "/api/v1"


def create_app(ws: Workspace) -> FastAPI:
    app = FastAPI(title="Soloist", version="1", openapi_url=f"{API_PREFIX}/openapi.json",
                  docs_url=f"{API_PREFIX}/docs", redoc_url=None,
                  description="The workspace's HTTP API: runs, approvals, memory, the "
                              "registry, the log and the measures. Every call needs a "
                              "bearer token (`soloist token create NAME --scope read`).")
    app.state.ws = ws
    app.state.throttle = Throttle()
    errors.install(app)
    for module in (runs, approvals, registry, memory, system, session):
        app.include_router(module.router)
    install_dashboard(app)
    return app
