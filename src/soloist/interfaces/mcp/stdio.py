"""``soloist mcp``: the workspace for an MCP client that starts it as a subprocess.

Over stdio there is no token: whoever can start the process can run the CLI too, so the
server acts as the local operator (``person:<[workspace] actor>``), and approve and reject
are offered only when soloist.toml says ``[mcp] allow_approvals = true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soloist.control.access import Principal, granted
from soloist.interfaces.mcp.tools import build_server

if TYPE_CHECKING:
    from soloist.workspace import Workspace


def local_operator(ws: Workspace) -> Principal:
    return Principal(ws.settings.actor, granted(["admin"]), ws.actor(None), token_id="")


def serve_stdio(ws: Workspace) -> None:
    """Answer MCP requests on stdin/stdout until the client closes them."""
    operator = local_operator(ws)
    server = build_server(ws, lambda: operator, approvals=ws.settings.mcp.allow_approvals)
    server.run("stdio")
