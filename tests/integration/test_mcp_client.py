"""The MCP client against a real MCP server (the SDK's MCPServer), over stdio and HTTP."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("mcp")

from support.mcp_servers import FAIL_MESSAGE, MCPHTTPServer, stdio_command
from support.netutil import child_processes as _children

from soloist.errors import ConfigError, DeterministicError, TransientError
from soloist.execution.context import ToolCall
from soloist.execution.tools.base import ToolRegistry
from soloist.execution.tools.mcp import (
    MCPClient,
    MCPServerConfig,
    MCPTool,
    register_servers,
)

TRANSPORTS = ["stdio", "http"]
CALL = ToolCall(run_id="r1", step_id="s1", idempotency_key="r1/s1/0", workspace="w")


def _mcp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "soloist-mcp"]


@pytest.fixture(scope="module")
def http_server() -> Iterator[MCPHTTPServer]:
    with MCPHTTPServer() as server:
        yield server


def _config(transport: str, http_server: MCPHTTPServer, **extra: float) -> MCPServerConfig:
    if transport == "stdio":
        return MCPServerConfig(name="demo", command=stdio_command(), **extra)
    return MCPServerConfig(name="demo", url=http_server.url,
                           headers={"X-Soloist": "test"}, **extra)


@pytest.fixture(scope="module", params=TRANSPORTS)
def client(request: pytest.FixtureRequest, http_server: MCPHTTPServer) -> Iterator[MCPClient]:
    mcp = MCPClient([_config(request.param, http_server, timeout=10.0)])
    try:
        yield mcp
    finally:
        mcp.close()


# ---------------------------------------------------------------------------------------
# Listing and mapping
# ---------------------------------------------------------------------------------------


def test_tools_are_listed_as_mcp_server_tool_with_their_effects(client: MCPClient) -> None:
    tools = {tool.name: tool for tool in client.list_tools()}
    assert set(tools) == {"mcp.demo.add", "mcp.demo.create_note", "mcp.demo.delete_all",
                          "mcp.demo.slow", "mcp.demo.fail", "mcp.demo.idempotency_key"}

    add = tools["mcp.demo.add"]
    assert (add.effect, add.idempotent) == ("read", True)
    assert add.description == "Add two integers."
    assert "mcp" in add.tags and "destructive" not in add.tags
    assert isinstance(add, MCPTool)
    assert set(add.args_schema["properties"]) == {"a", "b"}
    assert add.result_schema is not None and add.result_schema["type"] == "integer"
    assert add.server == "demo" and add.remote_name == "add"

    note = tools["mcp.demo.create_note"]
    assert (note.effect, note.idempotent) == ("write", False)
    assert "destructive" not in note.tags

    delete_all = tools["mcp.demo.delete_all"]
    assert delete_all.effect == "write" and "destructive" in delete_all.tags

    assert tools["mcp.demo.slow"].effect == "read"
    assert tools["mcp.demo.fail"].effect == "write"  # no annotations: assume it writes


def test_register_servers_adds_grantable_tools_that_call_the_server(
    request: pytest.FixtureRequest, http_server: MCPHTTPServer
) -> None:
    registry = ToolRegistry()
    configs = [_config(t, http_server).model_copy(update={"name": t}) for t in TRANSPORTS]
    mcp = register_servers(registry, configs)
    try:
        for transport in TRANSPORTS:
            assert f"mcp.{transport}.add" in registry
            assert registry.get(f"mcp.{transport}.add").invoke({"a": 2, "b": 3}, CALL) == 5
            note = registry.get(f"mcp.{transport}.create_note")
            assert note.invoke({"text": "hi"}, CALL) == "note created: hi"
            key = registry.get(f"mcp.{transport}.idempotency_key")
            assert key.invoke({}, CALL) == CALL.idempotency_key  # sent in the request _meta
            with pytest.raises(DeterministicError, match="'a'"):  # checked before the call
                registry.get(f"mcp.{transport}.add").invoke({"a": "x", "b": 3}, CALL)
    finally:
        mcp.close()


# ---------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------


def test_call_returns_the_unwrapped_structured_result(client: MCPClient) -> None:
    assert client.call("mcp.demo.add", {"a": 2, "b": 3}) == 5
    assert client.call("mcp.demo.create_note", {"text": "buy milk"}) == "note created: buy milk"
    assert client.call("mcp.demo.delete_all", {}) == "deleted 0 notes"


def test_a_tool_error_is_deterministic_with_the_servers_message(client: MCPClient) -> None:
    with pytest.raises(DeterministicError, match=FAIL_MESSAGE):
        client.call("mcp.demo.fail", {})
    with pytest.raises(DeterministicError, match=r"mcp\.demo\.add"):
        client.call("mcp.demo.add", {"a": "not a number", "b": 3})
    with pytest.raises(DeterministicError):
        client.call("mcp.demo.no_such_tool", {})
    with pytest.raises(DeterministicError, match="no MCP server named 'other'"):
        client.call("mcp.other.add", {"a": 1, "b": 2})


def test_a_slow_call_times_out_as_transient_and_the_client_still_works(
    client: MCPClient,
) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out after 0\.5s"):
        client.call("mcp.demo.slow", {"seconds": 5}, timeout=0.5)
    assert time.monotonic() - started < 3
    assert client.call("mcp.demo.add", {"a": 1, "b": 1}) == 2
    assert client.call("mcp.demo.slow", {"seconds": 0.05}, timeout=5) == "slept 0.05s"


def test_worker_threads_may_call_at_once(client: MCPClient) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: client.call("mcp.demo.add", {"a": n, "b": n}),
                                range(16)))
    assert results == [2 * n for n in range(16)]


# ---------------------------------------------------------------------------------------
# Connection failures, reconnection and shutdown
# ---------------------------------------------------------------------------------------


def test_a_command_that_does_not_exist_is_a_config_error_naming_the_server() -> None:
    with MCPClient([MCPServerConfig(name="ghost", command=["/nonexistent/mcp-server"])]) as mcp:
        with pytest.raises(ConfigError, match=r"'ghost'.*nonexistent"):
            mcp.list_tools()
        with pytest.raises(ConfigError, match="'ghost'"):
            mcp.call("mcp.ghost.add", {"a": 1, "b": 2})


def test_an_unreachable_url_is_transient_naming_the_server() -> None:
    with MCPHTTPServer() as gone:
        url = gone.url  # a port that was just free, and is closed again
    with MCPClient([MCPServerConfig(name="away", url=url, timeout=2.0)]) as mcp:
        with pytest.raises(TransientError, match="'away'"):
            mcp.call("mcp.away.add", {"a": 1, "b": 2})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dead_stdio_server_is_reconnected_on_the_next_call() -> None:
    before = _children()
    with MCPClient([MCPServerConfig(name="demo", command=stdio_command())]) as mcp:
        assert mcp.call("mcp.demo.add", {"a": 1, "b": 2}) == 3
        (server,) = _children() - before
        os.kill(server, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while server in _children() and time.monotonic() < deadline:
            time.sleep(0.02)
        results: list[object] = []
        for _ in range(2):  # the first call may see the broken session
            try:
                results.append(mcp.call("mcp.demo.add", {"a": 2, "b": 2}))
            except TransientError as exc:
                results.append(exc)
        assert results[-1] == 4
        (replacement,) = _children() - before
        assert replacement != server


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_close_leaves_no_threads_or_processes(
    transport: str, http_server: MCPHTTPServer
) -> None:
    children, threads = _children(), _mcp_threads()
    mcp = MCPClient([_config(transport, http_server)])
    assert mcp.call("mcp.demo.add", {"a": 2, "b": 3}) == 5
    assert len(_mcp_threads()) == len(threads) + 1
    if transport == "stdio":
        assert len(_children() - children) == 1
    mcp.close()
    mcp.close()  # idempotent
    assert _mcp_threads() == threads
    assert _children() <= children
    with pytest.raises(TransientError, match="closed"):
        mcp.call("mcp.demo.add", {"a": 2, "b": 3})


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "x"}, "exactly one of"),
        ({"name": "x", "command": ["a"], "url": "http://127.0.0.1:1/mcp"}, "exactly one of"),
        ({"name": "x.y", "command": ["a"]}, "letters, digits"),
        ({"name": "x", "command": []}, "must name a program"),
        ({"name": "x", "url": "ftp://127.0.0.1/"}, "http"),
        ({"name": "x", "url": "http://127.0.0.1:1/mcp", "cwd": "/"}, "stdio"),
        ({"name": "x", "command": ["a"], "headers": {"A": "b"}}, "HTTP"),
        ({"name": "x", "command": ["a"], "timeout": 0}, "greater than 0"),
        ({"name": "x", "command": "a b"}, "command"),
        ({"name": "x", "command": ["a"], "retries": 3}, "retries"),
    ],
)
def test_invalid_server_configs_are_config_errors(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        MCPServerConfig.parse(data)


def test_a_valid_config_accepts_an_integer_timeout() -> None:
    config = MCPServerConfig.parse({"name": "crm", "url": "http://127.0.0.1:9/mcp", "timeout": 5})
    assert (config.transport, config.timeout) == ("http", 5.0)
    with pytest.raises(ConfigError, match="listed twice"):
        MCPClient([config, config])
