"""``soloist hooks``: a small HTTP server taking ``POST /hooks/NAME`` deliveries, until the
HTTP API serves them. Everything a delivery means is :meth:`Workspace.receive_webhook`'s;
this only speaks HTTP (a body over :data:`MAX_BODY` is refused before it is read)."""

from __future__ import annotations

import json
import signal
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, WorkspaceOpt, open_workspace

if TYPE_CHECKING:
    import http.server

    from soloist.workspace import Workspace

#: the largest body taken, in bytes: webhooks are small; more is refused with 413
MAX_BODY = 1024 * 1024
PREFIX = "/hooks/"


def _handler(ws: Workspace) -> type[http.server.BaseHTTPRequestHandler]:
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "soloist-hooks"
        protocol_version = "HTTP/1.1"
        timeout = 30  # seconds a connection may stay silent: a stalled sender lets go

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if not path.startswith(PREFIX) or "/" in path[len(PREFIX):]:
                self._reply(404, {"error": f"nothing is served at {path}; POST to "
                                           f"{PREFIX}NAME"})
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._reply(411, {"error": "a delivery needs a Content-Length"})
                return
            if int(length) > MAX_BODY:
                self._reply(413, {"error": f"the body is larger than {MAX_BODY} bytes"})
                return
            body = self.rfile.read(int(length))
            try:
                reply = ws.receive_webhook(path[len(PREFIX):], dict(self.headers.items()),
                                           body)
            except Exception:  # a bug: the sender is told to try again, nothing was kept
                self.log_error("internal error taking a delivery to %s", path)
                self._reply(500, {"error": "internal error; send it again later"})
                return
            self._reply(reply.status, reply.body, reply.headers)

        def do_GET(self) -> None:
            self._reply(405, {"error": "deliveries are POSTed"}, {"Allow": "POST"})

        def _reply(self, status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per delivery is the log's (connector.received), not stderr's

    return Handler


def hooks(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8787,
          workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Take signed webhook deliveries at POST /hooks/NAME until SIGTERM or Ctrl-C."""
    import http.server

    from soloist.errors import UserError
    from soloist.interfaces.cli import render

    stop = threading.Event()
    with open_workspace(workspace) as ws:
        try:
            server = http.server.ThreadingHTTPServer((host, port), _handler(ws))
        except OSError as exc:  # the port is taken, or the address is not this host's
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="hooks", daemon=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        thread.start()
        try:
            bound_host, bound_port = server.server_address[:2]
            typer.echo(render.plain(f"soloist hooks: ready at http://{bound_host!s}:"
                                    f"{bound_port}{PREFIX}NAME, store {ws.store.url}; "
                                    "SIGTERM stops"), err=True)
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def register(app: typer.Typer) -> None:
    app.command()(hooks)
