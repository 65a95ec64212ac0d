"""A real MCP server, built with the ``mcp`` SDK, for testing Soloist's MCP client.

Its tools cover every mapping the client makes:

* ``add(a, b)``: ``readOnlyHint``, ``idempotentHint``; returns ``a + b``;
* ``create_note(text)``: ``destructiveHint: false``, not read-only; returns
  ``"note created: <text>"``;
* ``delete_all()``: ``destructiveHint: true``; returns ``"deleted 0 notes"``;
* ``slow(seconds)``: ``readOnlyHint``; sleeps, then answers;
* ``fail()``: no annotations; always fails (a result with ``isError``) with
  :data:`FAIL_MESSAGE`;
* ``idempotency_key()``: ``readOnlyHint``; the ``io.soloist/idempotency-key`` the request
  carried in its ``_meta``.

Two ways to run it:

* over stdio, as a subprocess: ``python tests/support/mcp_servers.py stdio``
  (:func:`stdio_command` gives that command line for the running interpreter);
* over streamable HTTP on ``127.0.0.1`` and a free port, in a thread of this process::

      with MCPHTTPServer() as server:
          client = MCPClient([MCPServerConfig(name="demo", url=server.url)])
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from soloist.interfaces.mcp.tools import logging_untouched

if TYPE_CHECKING:
    import uvicorn

__all__ = ["FAIL_MESSAGE", "HOST", "MCPHTTPServer", "build_server", "main", "stdio_command"]

HOST = "127.0.0.1"
FAIL_MESSAGE = "the fail tool always fails"
IDEMPOTENCY_META_KEY = "io.soloist/idempotency-key"


def build_server(name: str = "soloist-test") -> MCPServer:
    """A fresh server with the test tools (one per HTTP app: a session manager runs once)."""
    with logging_untouched():
        server: MCPServer = MCPServer(name, log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    def create_note(text: str) -> str:
        """Create a note with the given text."""
        return f"note created: {text}"

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    def delete_all() -> str:
        """Delete every note."""
        return "deleted 0 notes"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def slow(seconds: float) -> str:
        """Sleep for ``seconds``, then answer."""
        await anyio.sleep(seconds)
        return f"slept {seconds}s"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def idempotency_key(ctx: Context) -> str:
        """The idempotency key the request carried in its ``_meta`` ("" if none)."""
        meta: dict[str, object] = dict(ctx.request_context.meta or {})
        return str(meta.get(IDEMPOTENCY_META_KEY, ""))

    @server.tool()
    def fail() -> str:
        """Always fail."""
        raise ToolError(FAIL_MESSAGE)

    return server


def stdio_command() -> list[str]:
    """The command line that runs this server over stdio with the current interpreter."""
    return [sys.executable, str(Path(__file__).resolve()), "stdio"]


class MCPHTTPServer:
    """The test server over streamable HTTP, served by uvicorn in a background thread.

    Binds ``127.0.0.1`` on a free port before starting (no race for the port); ``url``
    is the MCP endpoint. Leaving the ``with`` block stops uvicorn and joins the thread.
    """

    def __init__(self, *, name: str = "soloist-test", startup_timeout: float = 10.0) -> None:
        self.name = name
        self.startup_timeout = startup_timeout
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the MCP HTTP server is not running")
        return f"http://{HOST}:{self.port}/mcp"

    def start(self) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        app = build_server(self.name).streamable_http_app(host=HOST)
        config = uvicorn.Config(
            app,
            host=HOST,
            port=self.port,
            log_config=None,  # leave the host process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()/stop()
                self._error = exc

        self._thread = threading.Thread(target=serve, name=f"mcp-http-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the MCP HTTP test server did not start: {self._error!r}")
            time.sleep(0.01)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    transport = args[0] if args else "stdio"
    if transport == "stdio":
        build_server().run("stdio")
        return 0
    if transport == "http":
        with MCPHTTPServer() as server:
            print(server.url, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
    print("usage: python tests/support/mcp_servers.py [stdio|http]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
