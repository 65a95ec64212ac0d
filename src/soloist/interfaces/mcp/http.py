"""The MCP server over streamable HTTP: an ASGI app the API mounts at ``/mcp``.

Every request carries ``Authorization: Bearer <token>`` (``soloist token create``); without
a valid one the answer is 401, and a ``tools/call`` of a tool beyond the token's scope is
403, both as ``{"error": {"kind", "message"}}`` before the MCP server sees the request.
The principal reaches the tool through a context variable set for the request.

Stateless: each POST is served by a fresh session manager, so the app needs no lifespan of
its own (a mounted app gets none) and nothing of one request outlives it. The SDK's DNS
rebinding check is off: it guards servers that trust any local caller, and every request
here must carry a token that a rebound page does not have.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

from soloist.control.access import Principal
from soloist.errors import PermissionDenied, Unauthenticated
from soloist.interfaces.mcp.tools import TOOL_SCOPES, build_server

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import Message, Receive, Scope, Send

    from soloist.workspace import Workspace

#: who the request being served is (set by :class:`MCPHTTPApp` for that request only)
_CALLER: ContextVar[Principal] = ContextVar("soloist_mcp_caller")


def _caller() -> Principal:
    try:
        return _CALLER.get()
    except LookupError:  # a tool called outside a request: nobody to act for
        raise Unauthenticated() from None


def build_http_app(ws: Workspace) -> MCPHTTPApp:
    """The ASGI app of the workspace's MCP server; approve and reject are offered to
    tokens with the ``approve`` scope when ``[mcp] allow_approvals = true``."""
    allow = ws.settings.mcp.allow_approvals
    plain = build_server(ws, _caller, approvals=False)
    return MCPHTTPApp(ws, plain, build_server(ws, _caller, approvals=True) if allow else None)


class MCPHTTPApp:
    def __init__(self, ws: Workspace, plain: MCPServer, deciding: MCPServer | None) -> None:
        self.ws = ws
        self.plain = plain
        #: the server with approve and reject, when the workspace allows them
        self.deciding = deciding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            principal = await anyio.to_thread.run_sync(self.ws.access.authenticate,
                                                       bearer(scope))
        except Unauthenticated as exc:
            await _error(send, 401, "unauthenticated", exc.message,
                         [(b"www-authenticate", b'Bearer realm="soloist"')])
            return
        body = await _read_body(receive)
        if body is None:
            await _error(send, 413, "too_large", "the request body is larger than "
                         f"{DEFAULT_MAX_REQUEST_BODY_SIZE} bytes")
            return
        denied = refusal(body, principal)
        if denied is not None:
            await _error(send, 403, "permission_denied", denied.message)
            return
        server = self.deciding if self.deciding is not None and principal.may(
            "approve") else self.plain
        # The private attribute is the SDK's own way in (its in-process Client uses it).
        manager = StreamableHTTPSessionManager(server._lowlevel_server, stateless=True,
                                               json_response=True)
        token = _CALLER.set(principal)
        try:
            async with manager.run():
                await manager.handle_request(scope, _replay(body, receive), send)
        finally:
            _CALLER.reset(token)


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, secret = value.decode("latin-1").partition(" ")
            return secret.strip() if kind.lower() == "bearer" else None
    return None


def refusal(body: bytes, principal: Principal) -> PermissionDenied | None:
    """Why the request calls a tool the token may not; None if it calls none such (or is
    not JSON at all: the MCP server answers that)."""
    try:
        message: Any = json.loads(body) if body else None
    except ValueError:
        return None
    for item in message if isinstance(message, list) else [message]:
        if not isinstance(item, dict) or item.get("method") != "tools/call":
            continue
        params = item.get("params")
        tool = params.get("name") if isinstance(params, dict) else None
        needed = TOOL_SCOPES.get(tool) if isinstance(tool, str) else None
        if needed is not None and not principal.may(needed):
            return PermissionDenied(f"the token {principal.name!r} does not have the "
                                    f"{needed!r} scope that {tool} needs")
    return None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None once it passes the SDK's own limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > DEFAULT_MAX_REQUEST_BODY_SIZE:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then what the client sends next
    (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _error(send: Send, status: int, kind: str, message: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"error": {"kind": kind, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Served on its own (not mounted), the app has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
