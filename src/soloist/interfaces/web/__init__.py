"""The web dashboard: server-rendered pages (Jinja2, autoescaped) with htmx for what
changes while it is looked at, over the same workspace methods as the API and the CLI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the dashboard's pages and its static files (htmx, the style sheet) to ``app``."""
    from soloist.interfaces.web import (
        approvals,
        home,
        memory,
        metrics,
        overrides,
        pages,
        registry,
        run,
        runs,
        workers,
    )

    app.state.web_templates = pages.environment()
    for module in (home, runs, run, approvals, overrides, memory, registry, metrics,
                   workers):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
