"""What every page shares: the templates (Jinja2, autoescaped: everything from users,
agents, memory or external systems is data, never markup), who is looking, the CSRF field
of its forms, and an HTML answer for an error instead of the API's JSON one.

Pages are sync functions, as the API's routes are (the workspace's methods block on the
store); a form route reads its fields first (:data:`FormFields`), so that the CSRF token
it carries is known before the request is authenticated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from soloist.control.access import Principal
from soloist.errors import SoloistError
from soloist.interfaces.api.auth import COOKIE, csrf_token, require
from soloist.interfaces.api.errors import status_of

if TYPE_CHECKING:
    from soloist.workspace import Workspace

_log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
#: when a live part of a page asks whether it changed: as soon as the log's live stream
#: (static/live.js) says something happened, and every 30 s should the stream be cut
POLL = "soloist:changed from:body, every 30s"
#: Should something slip past the escaping, the browser still runs only this server's
#: scripts (htmx and the inbox's keys: no inline script, no eval) and no other site
#: may frame a page to trick a click on Approve.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def pretty(value: Any) -> str:
    """JSON for a <pre>: the template escapes it."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def digest(*parts: Any) -> str:
    """A short fingerprint of what a live fragment shows: unchanged, it is not sent again."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, span=span, pretty=pretty)
    env.globals["poll"] = POLL
    return env


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def viewer(request: Request, scope: str = "read") -> Principal:
    """The signed-in principal, if it has ``scope`` (else Unauthenticated or
    PermissionDenied, which :class:`PageRoute` shows as a page).

    Every page asks first, before it reads what it shows; so the log's head is read here,
    and the page's live stream starts from it: an event that lands while the page is
    being made still refreshes it."""
    principal = require(request, scope)
    request.state.log_after = workspace(request).log_head()
    return principal


def render(request: Request, template: str, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    env: jinja2.Environment = request.app.state.web_templates
    principal = getattr(request.state, "principal", None)
    cookie = request.cookies.get(COOKIE)
    html = env.get_template(template).render(
        request=request, principal=principal, path=request.url.path,
        csrf=csrf_token(cookie) if cookie else "",
        log_after=getattr(request.state, "log_after", None), **context)
    return HTMLResponse(html, status, {**SECURITY_HEADERS, **(headers or {})})


def unchanged() -> Response:
    """What a live fragment answers when nothing it shows moved: htmx swaps nothing."""
    return Response(status_code=204)


async def read_form(request: Request) -> FormData:
    form = await request.form()
    token = form.get("csrf")
    if isinstance(token, str):
        request.state.csrf = token
    return form


FormFields = Annotated[FormData, Depends(read_form)]


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def error_page(request: Request, error: SoloistError) -> HTMLResponse:
    status = status_of(error)
    if status == 500:
        _log.error("internal error on %s", request.url.path, exc_info=error)
        return render(request, "error.html", 500, title="Something went wrong",
                      message="internal error; the server's log says more")
    if status == 401:
        return render(request, "signin.html", 401, message=error.message)
    headers = {}
    if status in (429, 503):
        headers["Retry-After"] = str(max(1, round(error.retry_after or 1)))
    titles = {403: "Not allowed", 404: "Not found", 409: "Not now", 429: "Too many tries"}
    return render(request, "error.html", status, headers,
                  title=titles.get(status, "That did not work"), message=error.message)


class PageRoute(APIRoute):
    """A route whose errors are pages: a person's mistake reads as one sentence, with the
    status that says what it is, never JSON or a traceback."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SoloistError as error:
                return error_page(request, error)
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:])
                message = str(first.get("msg", "the request is invalid"))
                return render(request, "error.html", 422, title="That did not work",
                              message=f"{where}: {message}" if where else message)

        return route
