"""``soloist mcp``: serve the workspace to an MCP client over stdio."""

from __future__ import annotations

from soloist.interfaces.cli.options import DEFAULT_WS, WorkspaceOpt, open_workspace


def serve(workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Serve the workspace to an MCP client over stdio, as the local operator.

    Approve and reject are offered only when soloist.toml's mcp table sets
    allow_approvals = true. Over HTTP the API serves the same tools at /mcp, with a bearer
    token."""
    from soloist.interfaces.mcp.stdio import serve_stdio

    with open_workspace(workspace) as ws:
        serve_stdio(ws)
