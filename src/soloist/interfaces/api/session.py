"""Signing in to the dashboard: ``GET /login?token=...`` (the one-time link ``soloist up``
prints) trades the link for a session cookie and goes to the dashboard; ``POST /logout``
ends the session. The cookie is HttpOnly (no script reads it), SameSite=Lax (another
site's forms do not carry it) and lives as long as the session."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from soloist.errors import Unauthenticated
from soloist.interfaces.api.auth import COOKIE, Throttle, authenticate, client_address

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login(request: Request, token: Annotated[str, Query(max_length=200)] = "") -> Response:
    throttle: Throttle = request.app.state.throttle
    address = client_address(request)
    throttle.check(address)
    try:
        issued, _ = request.app.state.ws.access.sign_in(token)
    except Unauthenticated:
        throttle.failed(address)
        raise
    throttle.succeeded(address)
    response = RedirectResponse("/", status_code=303)
    max_age = int((issued.expires_at or time.time()) - time.time())
    response.set_cookie(COOKIE, issued.secret, max_age=max_age, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    principal = authenticate(request)
    request.app.state.ws.access.sign_out(principal)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
