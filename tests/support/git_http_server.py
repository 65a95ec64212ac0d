"""A real git smart-HTTP server with Basic authentication, on ``127.0.0.1``.

``git http-backend`` (the CGI program shipped with git) serves bare repositories under a
temporary folder; a small threaded HTTP server in front of it asks for one user and
password (``401`` with ``WWW-Authenticate: Basic`` otherwise) and runs the backend per
request. Clone, fetch and push all work once logged in, which is what the git client's
credential path needs to be tested against (``git daemon`` has no authentication).

::

    with GitHTTPServer() as git:
        url = git.create_repository("notes")   # http://127.0.0.1:PORT/notes.git
"""

from __future__ import annotations

import base64
import http.server
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from support.git_server import git_env
from support.netutil import HOST, Harness

__all__ = ["GitHTTPServer"]


class GitHTTPServer(Harness):
    """``git http-backend`` behind Basic auth for ``user``/``password``, on a free port."""

    def __init__(self, user: str = "ada", password: str = "correct horse") -> None:
        self.user = user
        self.password = password
        self.port = 0
        self.base: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.port}/{name}.git"

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="soloist-git-http-")
        self.base = Path(self._tmp.name) / "repos"
        self.base.mkdir()
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        base, home, user = self.base, Path(self._tmp.name), self.user

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                env = git_env(home)
                env.update(
                    GIT_PROJECT_ROOT=str(base), GIT_HTTP_EXPORT_ALL="1",
                    PATH_INFO=parts.path, QUERY_STRING=parts.query,
                    REQUEST_METHOD=self.command, REMOTE_USER=user,
                    REMOTE_ADDR=HOST, CONTENT_LENGTH=str(len(body)),
                    CONTENT_TYPE=self.headers.get("Content-Type", ""),
                    GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
                )  # fmt: skip
                done = subprocess.run(["git", "http-backend"], input=body, env=env,
                                      capture_output=True, timeout=60)
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.base = None

    def create_repository(self, name: str, *, branch: str = "main") -> str:
        """A new empty bare repository ``<name>.git`` whose HEAD is ``branch``; its URL."""
        assert self.base is not None and self._tmp is not None, "start the server first"
        subprocess.run(
            ["git", "init", "--bare", "--quiet", f"--initial-branch={branch}",
             str(self.base / f"{name}.git")],
            check=True, capture_output=True, env=git_env(Path(self._tmp.name)),
        )  # fmt: skip
        return self.url(name)
