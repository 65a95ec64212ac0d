"""Who a request is, and whether it may do what it asks.

A request carries a bearer token (``Authorization: Bearer ...``, from ``soloist token
create``) or the dashboard's session cookie (HttpOnly, SameSite=Lax, made by a one-time
login link). Each route names the scope it needs (``soloist.control.access``); the
principal's actor (``token:NAME`` or ``person:NAME``) is who its actions are logged as.

A request authenticated by the cookie that changes something must also carry the session's
CSRF token (header ``X-CSRF-Token`` or form field ``csrf``): a page of another site can make
the browser send the cookie, but cannot read it, so cannot know the token. Sign-in attempts
that fail are counted per client address: past ten in fifteen minutes, the address must
wait before it is heard again (429 with Retry-After), doubling each time.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Request

from soloist.control.access import FAILURE_WINDOW, Principal, login_wait
from soloist.errors import PermissionDenied, TooManyAttempts, Unauthenticated

if TYPE_CHECKING:
    from soloist.workspace import Workspace

COOKIE = "soloist_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a session: derived from its cookie, which only the browser that
    holds it (and this server) can read."""
    return hashlib.sha256(f"soloist-csrf:{session_secret}".encode()).hexdigest()[:32]


class Throttle:
    """Failed sign-ins per client address, in this process (a restart forgets them; the
    tokens themselves are 256 random bits, so this only slows a nuisance)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def check(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if now - t < FAILURE_WINDOW]
            self._failures[address] = recent
            if not recent:
                return
            wait = login_wait(len(recent)) - (now - recent[-1])
        if wait > 0:
            raise TooManyAttempts(wait)

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures.setdefault(address, []).append(self._clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _credential(request: Request) -> tuple[str, bool]:
    """The secret the request carries, and whether it came in the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip(), False
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return cookie, True
    raise Unauthenticated("sign in: send 'Authorization: Bearer <token>' (make one with "
                          "`soloist token create NAME --scope read`) or open the login "
                          "link `soloist up` printed")


def _admitted(request: Request, principal: Principal, secret: str, by_cookie: bool
              ) -> Principal:
    if by_cookie and request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER) or getattr(request.state, "csrf", None)
        if not given or not hmac.compare_digest(given, csrf_token(secret)):
            raise PermissionDenied("this form is missing its CSRF token (reload the page)")
    request.state.principal = principal
    return principal


def _looked_up(request: Request, secret: str) -> Principal:
    """The store's answer for ``secret`` (a read), counted as a failure if it is no."""
    ws: Workspace = request.app.state.ws
    throttle: Throttle = request.app.state.throttle
    try:
        return ws.access.authenticate(secret)
    except Unauthenticated:
        throttle.failed(client_address(request))
        raise


def authenticate(request: Request) -> Principal:
    """The request's principal (cached on it), or :class:`Unauthenticated`."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    secret, by_cookie = _credential(request)
    request.app.state.throttle.check(client_address(request))
    principal = request.app.state.ws.access.cached(secret) or _looked_up(request, secret)
    return _admitted(request, principal, secret, by_cookie)


async def authenticate_async(request: Request) -> Principal:
    """:func:`authenticate` for the event loop: a token found within the last second is
    taken from memory, and only a lookup goes to a thread (it reads the store)."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    secret, by_cookie = _credential(request)
    request.app.state.throttle.check(client_address(request))
    principal = request.app.state.ws.access.cached(secret)
    if principal is None:
        principal = await anyio.to_thread.run_sync(_looked_up, request, secret)
    return _admitted(request, principal, secret, by_cookie)


def _scoped(principal: Principal, scope: str) -> Principal:
    if not principal.may(scope):
        raise PermissionDenied(f"the token {principal.name!r} does not have the {scope!r} "
                               "scope this needs; its scopes are "
                               f"{', '.join(sorted(principal.scopes))}")
    return principal


def require(request: Request, scope: str) -> Principal:
    """The principal, if it has ``scope`` (for code that runs in a thread: a page)."""
    return _scoped(authenticate(request), scope)


def need(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the principal, if it has ``scope``. Async, so a request whose token is
    known costs no trip through the thread pool before its route's own."""
    async def dependency(request: Request) -> Principal:
        return _scoped(await authenticate_async(request), scope)
    dependency.__name__ = f"need_{scope}"
    return dependency
