"""Which MCP requests the HTTP entry refuses before the MCP server reads them: a tools/call
of a tool beyond the token's scope, alone or in a batch; anything else goes through."""

from __future__ import annotations

import json

from soloist.control.access import Principal, granted
from soloist.interfaces.mcp.http import bearer, refusal


def principal(*scopes: str) -> Principal:
    return Principal("t", granted(scopes), "token:t", "t-1")


def call(tool: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}}


def test_a_call_beyond_the_scope_is_refused_alone_or_in_a_batch() -> None:
    reader = principal("read")
    refused = refusal(json.dumps(call("start_run")).encode(), reader)
    assert refused is not None and "'run' scope that start_run needs" in refused.message
    batch = json.dumps([call("list_runs"), call("approve")]).encode()
    assert refusal(batch, reader) is not None
    assert refusal(batch, principal("approve")) is None
    assert refusal(json.dumps(call("start_run")).encode(), principal("admin")) is None


def test_what_is_not_a_call_of_a_known_tool_goes_to_the_server() -> None:
    reader = principal("read")
    for body in (b"", b"not json", b"[1, 2]", json.dumps(call("nope")).encode(),
                 json.dumps({"method": "tools/list", "id": 1}).encode(),
                 json.dumps({"method": "tools/call", "params": "x"}).encode()):
        assert refusal(body, reader) is None


def test_only_a_bearer_authorization_is_read() -> None:
    assert bearer({"headers": [(b"authorization", b"Bearer sol_tok_x")]}) == "sol_tok_x"
    assert bearer({"headers": [(b"authorization", b"bearer  sol_tok_x ")]}) == "sol_tok_x"
    assert bearer({"headers": [(b"authorization", b"Basic dTpw")]}) is None
    assert bearer({"headers": []}) is None
