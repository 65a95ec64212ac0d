"""MCP client: the tools of MCP servers as Soloist tools named ``mcp.<server>.<tool>``.

Servers are listed in ``soloist.toml`` (each entry validated by
:meth:`MCPServerConfig.parse`): a stdio ``command`` that Soloist starts, or a streamable
HTTP ``url``. Each server tool becomes a :class:`MCPTool`, grantable like any other tool:

* ``effect`` is ``"read"`` only when the server says ``readOnlyHint: true``; anything
  else, including no annotations at all, is a ``"write"`` (staged, gated, keyed);
* ``idempotent`` is ``idempotentHint``; ``destructiveHint: true`` adds the tag
  ``"destructive"``; every such tool carries the tag ``"mcp"``;
* the result is the tool's structured content when it has some (a value the server's
  SDK wrapped as ``{"result": value}`` is unwrapped), else its text content joined.

Failures map onto Soloist's kinds: a timeout or a lost connection is a
:class:`~soloist.errors.TransientError` (retried; the next call reconnects), a tool
result flagged ``isError`` or a protocol error is a
:class:`~soloist.errors.DeterministicError` carrying the server's text.

The ``mcp`` SDK is asynchronous and Soloist's worker runs tools in threads, so
:class:`MCPClient` is a synchronous facade: one daemon thread runs one asyncio event
loop that owns a persistent ``ClientSession`` per server. Callers submit coroutines to
it with :func:`asyncio.run_coroutine_threadsafe` and wait on the future, bounded by
the call's timeout. Each session lives in a task of its own ("holder"), because the
SDK's transports are anyio task groups that must be entered and left by the same task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, TextIO, TypeVar, cast

from pydantic import Field, ValidationError

from soloist.config.sections import DEFAULT_MCP_TIMEOUT, MCPServerSection, ServerName
from soloist.errors import ConfigError, DeterministicError, StepFailure, TransientError
from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Tool, ToolRegistry

if TYPE_CHECKING:  # the ``mcp`` extra is imported only when a server is used
    import mcp_types
    from mcp import ClientSession
    from mcp.client._transport import TransportStreams

__all__ = [
    "DEFAULT_TIMEOUT",
    "IDEMPOTENCY_META_KEY",
    "MCPClient",
    "MCPServerConfig",
    "MCPTool",
    "register_servers",
    "tool_name",
]

DEFAULT_TIMEOUT = DEFAULT_MCP_TIMEOUT
"""Seconds allowed for connecting to a server and for each call, unless configured."""

_GRACE = 2.0
"""Extra seconds the caller waits beyond the SDK's own request timeout before giving up."""

_CLOSE_TIMEOUT = 10.0
"""Seconds allowed for shutting one server connection down (stdio: up to ~6 s in the SDK)."""

logger = logging.getLogger(__name__)

IDEMPOTENCY_META_KEY = "io.soloist/idempotency-key"
"""The request ``_meta`` key that carries a call's idempotency key to the server."""

T = TypeVar("T")


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


class MCPServerConfig(MCPServerSection):
    """One MCP server, named: ``[mcp.servers.<name>]`` with the name the table has."""

    name: ServerName = Field(description="Short name; its tools are called "
                                         "mcp.<name>.<tool>.")

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @classmethod
    def from_section(cls, name: str, section: MCPServerSection) -> MCPServerConfig:
        """The server ``[mcp.servers.<name>]`` describes (checked when the workspace
        opened)."""
        return cls(name=name, **section.model_dump())

    @classmethod
    def parse(cls, data: dict[str, Any]) -> MCPServerConfig:
        """Validate one server entry of ``soloist.toml``; problems become a ConfigError."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'server'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid MCP server {data.get('name', '?')!r}: {problems}") from None


def tool_name(server: str, remote: str) -> str:
    """The Soloist name of a server's tool: ``mcp.<server>.<tool>``."""
    return f"mcp.{server}.{remote}"


def _split_name(name: str) -> tuple[str, str]:
    prefix, _, rest = name.partition(".")
    server, _, remote = rest.partition(".")
    if prefix != "mcp" or not server or not remote:
        raise DeterministicError(f"{name!r} is not an MCP tool name (mcp.<server>.<tool>)")
    return server, remote


# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MCPTool(Tool):
    """A Soloist tool backed by a tool of an MCP server.

    ``args_schema`` is the server's input schema (so arguments are checked with
    jsonschema before the call); ``result_schema`` describes the value :meth:`invoke`
    returns (the inner schema when the server wraps bare values as ``{"result": ...}``);
    ``output_schema`` is the server's own, as declared.
    """

    server: str = ""
    remote_name: str = ""
    output_schema: dict[str, Any] | None = field(default=None, hash=False, compare=False)


_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _to_tool(client: MCPClient, server: str, remote: mcp_types.Tool) -> MCPTool:
    """Map an ``mcp_types.Tool`` onto a Soloist tool."""
    annotations = remote.annotations
    read_only = bool(annotations is not None and annotations.read_only_hint)
    idempotent = bool(annotations is not None and annotations.idempotent_hint)
    destructive = bool(annotations is not None and annotations.destructive_hint)
    tags = ("mcp", f"mcp:{server}") + (("destructive",) if destructive else ())
    name = tool_name(server, remote.name)
    schema: dict[str, Any] = dict(remote.input_schema or _ANY_OBJECT)
    spec: dict[str, Any] = {
        "name": name,
        "fn": _tool_fn(client, name, schema),
        "effect": "read" if read_only else "write",
        "idempotent": idempotent,
        "description": remote.description or remote.title or "",
        "tags": tags,
        "result_schema": _result_schema(remote.output_schema) or {},
        "server": server,
        "remote_name": remote.name,
        "output_schema": remote.output_schema,
    }
    try:
        return MCPTool(args_schema=schema, **spec)
    except TypeError as exc:  # the server's schema is not valid JSON Schema
        logger.warning("MCP tool %s: %s; its arguments are not checked before the call",
                       name, exc)
        return MCPTool(args_schema=dict(_ANY_OBJECT), **spec)


def _result_schema(output_schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of the value a call returns, given the server's output schema."""
    if output_schema is None:
        return None
    properties = output_schema.get("properties")
    if _wraps_a_value(output_schema) and isinstance(properties, dict):
        inner = dict(properties["result"])
        if "$defs" in output_schema:
            inner["$defs"] = output_schema["$defs"]
        return inner
    return output_schema


def _tool_fn(client: MCPClient, name: str, schema: dict[str, Any]) -> Callable[..., Any]:
    properties = schema.get("properties")
    if isinstance(properties, dict) and "call" in properties:
        # The server's tool has an argument named "call": do not take Soloist's.
        def fn_plain(**kwargs: Any) -> Any:
            return client.call(name, kwargs)

        return fn_plain

    def fn(call: ToolCall | None = None, **kwargs: Any) -> Any:
        key = call.idempotency_key if call is not None else None
        return client.call(name, kwargs, idempotency_key=key)

    return fn


# ---------------------------------------------------------------------------------------
# Results and errors
# ---------------------------------------------------------------------------------------


def _result_value(
    name: str, result: mcp_types.CallToolResult, output_schema: dict[str, Any] | None
) -> Any:
    """The value of a ``CallToolResult``; ``isError`` raises with the server's text."""
    from mcp_types import TextContent

    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    if result.is_error:
        message = "\n".join(texts).strip() or "the server reported an error without a message"
        raise DeterministicError(f"MCP tool {name} failed: {message}")
    structured = result.structured_content
    if structured is not None:
        if _is_wrapped(structured, output_schema):
            return structured["result"]
        return structured
    if texts or not result.content:
        return "\n".join(texts)
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content]


def _is_wrapped(structured: Any, output_schema: dict[str, Any] | None) -> bool:
    """Whether the server wrapped a bare value as ``{"result": value}`` (as MCPServer does)."""
    if not isinstance(structured, dict) or set(structured) != {"result"}:
        return False
    return output_schema is not None and _wraps_a_value(output_schema)


def _wraps_a_value(output_schema: dict[str, Any]) -> bool:
    """An output schema of exactly one required property ``result``: the SDKs' wrapper."""
    properties = output_schema.get("properties")
    return (isinstance(properties, dict) and set(properties) == {"result"}
            and output_schema.get("required") == ["result"])


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _connect_error(config: MCPServerConfig, exc: BaseException) -> StepFailure | ConfigError:
    """What a failure to connect to (or initialize) a server becomes."""
    from mcp.shared.exceptions import MCPError
    from mcp_types import REQUEST_TIMEOUT

    where = f"MCP server {config.name!r}"
    for leaf in _leaves(exc):
        if isinstance(leaf, StepFailure | ConfigError):
            return leaf
        if isinstance(leaf, FileNotFoundError | PermissionError | NotADirectoryError):
            command = " ".join(config.command or [])
            return ConfigError(f"{where}: cannot start {command!r}: {leaf}")
        if isinstance(leaf, MCPError):
            if leaf.code == REQUEST_TIMEOUT:
                return TransientError(
                    f"{where} did not answer the handshake within {config.timeout:g}s")
            return TransientError(f"{where} refused the handshake: {leaf.message}")
        if isinstance(leaf, TimeoutError):
            return TransientError(f"{where} did not connect within {config.timeout:g}s")
    leaf = next(_leaves(exc))
    target = config.url or " ".join(config.command or [])
    return TransientError(f"cannot connect to {where} ({target}): {type(leaf).__name__}: {leaf}")


def _is_connection_loss(exc: BaseException) -> bool:
    """Errors that mean the session is gone (the next call must reconnect)."""
    import anyio
    import httpx2
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    for leaf in _leaves(exc):
        if isinstance(leaf, MCPError):
            if leaf.code == CONNECTION_CLOSED:
                return True
        elif isinstance(leaf, anyio.ClosedResourceError | anyio.BrokenResourceError
                        | anyio.EndOfStream | ConnectionError | OSError
                        | httpx2.TransportError):
            return True
    return False


# ---------------------------------------------------------------------------------------
# One server connection (lives on the client's event loop)
# ---------------------------------------------------------------------------------------


class _Connection:
    """A persistent session with one server; connected lazily, rebuilt after a failure."""

    def __init__(self, config: MCPServerConfig) -> None:
        self.config = config
        self.session: ClientSession | None = None
        self.tools: dict[str, mcp_types.Tool] = {}
        self._holder: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def alive(self) -> bool:
        return self.session is not None and self._holder is not None and not self._holder.done()

    async def ensure(self) -> ClientSession:
        """The live session, connecting first when there is none (bounded by the timeout)."""
        async with self._locked():
            if self.session is not None and self.alive:
                return self.session
            await self._shutdown()
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[ClientSession] = loop.create_future()
            self._stop = asyncio.Event()
            self._holder = loop.create_task(self._hold(ready, self._stop),
                                            name=f"mcp-{self.config.name}")
            try:
                session = await asyncio.wait_for(asyncio.shield(ready),
                                                 self.config.timeout + _GRACE)
            except BaseException as exc:
                await self._shutdown()
                if ready.done() and not ready.cancelled():
                    ready.exception()  # retrieved: no "never retrieved" report at GC
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise _connect_error(self.config, exc) from exc
            self.session = session
            self.tools = {}
            return session

    async def _hold(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        """Enter the transport and the session, report ready, wait for ``stop``, leave.

        The SDK's transports and ``ClientSession`` are anyio task groups: they must be
        left by the task that entered them, hence one long-lived task per connection.
        """
        from mcp import ClientSession
        from mcp_types import Implementation

        try:
            async with AsyncExitStack() as stack:
                read, write = await self._open_transport(stack)
                session = await stack.enter_async_context(ClientSession(
                    read, write, read_timeout_seconds=self.config.timeout,
                    client_info=Implementation(name="soloist", version="0.1.0")))
                await session.initialize()  # bounded by read_timeout_seconds
                ready.set_result(session)
                await stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
        except BaseException:
            if not ready.done():
                ready.set_exception(RuntimeError("the connection was cancelled"))
            raise

    async def _open_transport(self, stack: AsyncExitStack) -> TransportStreams:
        config = self.config
        if config.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=config.command[0], args=config.command[1:],
                                           env=dict(config.env) or None, cwd=config.cwd)
            return await stack.enter_async_context(stdio_client(params, errlog=_errlog(stack)))
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        assert config.url is not None
        # Our own httpx2 client, for the headers; streamable_http_client leaves it open.
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers=dict(config.headers),
            timeout=httpx2.Timeout(config.timeout, read=max(config.timeout, 300.0))))
        return await stack.enter_async_context(
            streamable_http_client(config.url, http_client=http))

    async def _list_tools(self, session: ClientSession) -> list[mcp_types.Tool]:
        from mcp_types import PaginatedRequestParams

        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(100):  # a server that pages forever cannot hang us
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = {tool.name: tool for tool in tools}
        return tools

    async def list_tools(self) -> list[mcp_types.Tool]:
        session = await self.ensure()
        return await self._run(session, lambda: self._list_tools(session),
                               self.config.timeout, "tools/list")

    async def call(self, remote: str, args: dict[str, Any], timeout: float,
                   idempotency_key: str | None = None) -> Any:
        session = await self.ensure()
        meta = (cast("mcp_types.RequestParamsMeta", {IDEMPOTENCY_META_KEY: idempotency_key})
                if idempotency_key else None)
        if remote not in self.tools:  # the output schema tells a wrapped value apart
            await self._run(session, lambda: self._list_tools(session),
                            self.config.timeout, "tools/list")
        result = await self._run(
            session,
            lambda: session.call_tool(remote, args, read_timeout_seconds=timeout, meta=meta),
            timeout, f"tool {remote}")
        tool = self.tools.get(remote)
        return _result_value(tool_name(self.config.name, remote), result,
                             tool.output_schema if tool is not None else None)

    async def _run(self, session: ClientSession, make: Callable[[], Awaitable[T]],
                   timeout: float, what: str) -> T:
        """Run one request on ``session``, translating its failures into Soloist's kinds.

        A lost connection (or a request the SDK failed to time out) discards ``session``
        so that the next call reconnects.
        """
        import anyio
        from mcp.shared.exceptions import MCPError
        from mcp_types import REQUEST_TIMEOUT

        where = f"MCP server {self.config.name!r}"
        try:
            with anyio.fail_after(timeout + _GRACE):
                return await make()
        except TimeoutError as exc:  # the SDK's own timeout did not fire: assume it is stuck
            await self._discard(session)
            raise TransientError(f"{where}: {what} timed out after {timeout:g}s") from exc
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise TransientError(f"{where}: {what} timed out after {timeout:g}s") from exc
            if _is_connection_loss(exc):
                await self._discard(session)
                raise TransientError(f"{where}: connection lost during {what}") from exc
            raise DeterministicError(f"{where}: {what} failed: {exc.message}") from exc
        except Exception as exc:
            if _is_connection_loss(exc):
                await self._discard(session)
                raise TransientError(
                    f"{where}: connection lost during {what}: {type(exc).__name__}: {exc}"
                ) from exc
            raise DeterministicError(
                f"{where}: {what} failed: {type(exc).__name__}: {exc}") from exc

    async def _discard(self, session: ClientSession) -> None:
        """Shut the connection down if it still is the one ``session`` belongs to."""
        async with self._locked():
            if self.session is session:
                await self._shutdown()

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _shutdown(self) -> None:
        """Leave the session and the transport (stdio: the server process is stopped)."""
        holder, stop = self._holder, self._stop
        self.session, self._holder, self._stop = None, None, None
        if holder is None:
            return
        if stop is not None:
            stop.set()
        done, _ = await asyncio.wait({holder}, timeout=_CLOSE_TIMEOUT)
        if not done:  # the SDK's bounded shutdown overran: cancel it as a last resort
            holder.cancel()
            await asyncio.wait({holder}, timeout=_CLOSE_TIMEOUT)

    async def close(self) -> None:
        async with self._locked():
            await self._shutdown()


def _errlog(stack: AsyncExitStack) -> TextIO:
    """Where a stdio server's stderr goes: ours when it is a real file, else /dev/null."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        devnull = open(os.devnull, "w")
        stack.callback(devnull.close)
        return devnull
    return sys.stderr


# ---------------------------------------------------------------------------------------
# The synchronous facade
# ---------------------------------------------------------------------------------------


class MCPClient:
    """Synchronous access to the tools of several MCP servers.

    Thread-safe: any number of worker threads may call :meth:`call` at once; requests
    to one server share its session. Nothing starts until the first request. ``close()``
    stops every server connection (stdio processes included), the loop and its thread.
    """

    def __init__(self, configs: Iterable[MCPServerConfig]) -> None:
        self.configs: dict[str, MCPServerConfig] = {}
        for config in configs:
            if config.name in self.configs:
                raise ConfigError(f"MCP server {config.name!r} is listed twice")
            self.configs[config.name] = config
        self._connections = {name: _Connection(c) for name, c in self.configs.items()}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._closed = False

    # -- public API -----------------------------------------------------------------

    def list_tools(self, server: str | None = None) -> list[Tool]:
        """The tools of every server (or of one), as ``mcp.<server>.<tool>`` tools."""
        names = [server] if server is not None else list(self.configs)
        tools: list[Tool] = []
        for name in names:
            connection = self._connection(name)
            timeout = connection.config.timeout
            remote = self._submit(connection.list_tools(), 2 * timeout + 3 * _GRACE)
            tools.extend(_to_tool(self, name, item) for item in remote)
        return tools

    def call(self, tool_name: str, args: dict[str, Any] | None = None,
             timeout: float | None = None, *, idempotency_key: str | None = None) -> Any:
        """Call ``mcp.<server>.<tool>`` with ``args``; at most ``timeout`` seconds.

        ``timeout`` defaults to the server's configured one. ``idempotency_key`` (the
        tool's :class:`ToolCall` key when called through :meth:`Tool.invoke`) travels
        in the request's ``_meta`` as ``io.soloist/idempotency-key``, for servers that
        deduplicate.
        """
        server, remote = _split_name(tool_name)
        connection = self._connection(server)
        limit = connection.config.timeout if timeout is None else timeout
        if limit <= 0:
            raise DeterministicError(f"timeout for {tool_name} must be positive, not {limit}")
        return self._submit(connection.call(remote, dict(args or {}), limit, idempotency_key),
                            2 * connection.config.timeout + limit + 4 * _GRACE)

    def close(self) -> None:
        """Disconnect from every server, stop the loop and join its thread. Idempotent."""
        with self._lock:
            self._closed = True
            thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=len(self._connections) * 2 * _CLOSE_TIMEOUT + 5)
        with self._lock:
            self._thread = self._loop = self._stopping = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the loop thread -------------------------------------------------------------

    def _connection(self, server: str) -> _Connection:
        try:
            return self._connections[server]
        except KeyError:
            known = ", ".join(sorted(self._connections)) or "none"
            raise DeterministicError(
                f"no MCP server named {server!r} (configured: {known})") from None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise TransientError("the MCP client is closed")
            if self._loop is not None:
                return self._loop
            started = threading.Event()
            thread = threading.Thread(target=self._thread_main, args=(started,),
                                      name="soloist-mcp", daemon=True)
            thread.start()
            started.wait()
            if self._loop is None:
                raise TransientError("the MCP client's event loop did not start")
            self._thread = thread
            return self._loop

    def _thread_main(self, started: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            started.set()
            try:
                await self._stopping.wait()
            finally:
                await asyncio.gather(*(c.close() for c in self._connections.values()),
                                     return_exceptions=True)

        try:
            asyncio.run(main())
        finally:
            started.set()

    def _submit(self, coro: Coroutine[Any, Any, T], limit: float) -> T:
        try:
            loop = self._ensure_loop()
        except BaseException:
            coro.close()
            raise
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop ended under us: close() ran meanwhile
            coro.close()
            raise TransientError("the MCP client is closed") from None
        try:
            return future.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransientError(f"MCP request did not finish within {limit:g}s") from None
        except concurrent.futures.CancelledError:
            raise TransientError("the MCP request was cancelled (client closing)") from None


def register_servers(registry: ToolRegistry, configs: Iterable[MCPServerConfig]) -> MCPClient:
    """Add every tool of every server to ``registry``; returns the client that calls them.

    Connects to each server to list its tools (closing the client if one fails); the
    caller owns the client and closes it.
    """
    client = MCPClient(configs)
    try:
        for spec in client.list_tools():
            registry.add(spec)
    except BaseException:
        client.close()
        raise
    return client
