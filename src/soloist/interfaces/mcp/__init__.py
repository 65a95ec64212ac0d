"""The MCP server: the workspace's runs, approvals and memory as tools for MCP clients,
over stdio (``soloist mcp``, :mod:`.stdio`) and streamable HTTP (:func:`build_http_app`,
which the API mounts at ``/mcp``). The tools are in :mod:`.tools`."""

from soloist.interfaces.mcp.http import build_http_app
from soloist.interfaces.mcp.stdio import serve_stdio
from soloist.interfaces.mcp.tools import CALL_EVENT, TOOL_SCOPES, build_server

__all__ = ["CALL_EVENT", "TOOL_SCOPES", "build_http_app", "build_server", "serve_stdio"]
