"""Test doubles for the connector framework: a connector whose one action calls a real
local HTTP server, that server (scripted to answer 200, 429 with ``Retry-After``, 503, or
to hold a request), and a source that hands out a list of events.

:class:`ProbeConnector` stands in for a kind's class: a test makes it the webhook kind's
with ``monkeypatch.setitem(registry.KINDS, "webhook", PROBE_KIND)``, so that a
``[connectors.probe] kind = "webhook"`` table is built as a probe; a worker process gets
the same through ``python -m support.connectors`` (see :func:`main`). Its action
``probe.post`` goes through the connector's guard like every real connector's, which is
what the tests of the guard observe at the server.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from soloist.errors import DeterministicError, Throttled, TransientError
from soloist.execution.context import ToolCall
from soloist.integrations.connector import Action, Connector, Polled, Received

#: the value of registry.KINDS that builds a probe
PROBE_KIND = "support.connectors:ProbeConnector"
HOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (times by the server's clock)."""

    started: float
    ended: float
    key: str
    pid: str
    status: int


@dataclass
class _State:
    #: what the next requests answer, in order ("200", "429", "503"); then ``default``
    script: deque[str] = field(default_factory=deque)
    default: str = "200"
    retry_after: str = "1"
    #: requests wait until it is set (set: they do not wait)
    gate: threading.Event = field(default_factory=threading.Event)
    hold: float = 0.0  # seconds each request is held once through the gate
    in_flight: int = 0
    max_in_flight: int = 0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        self.gate.set()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        state = self.server.state
        started = time.time()
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            answer = state.script.popleft() if state.script else state.default
            state.changed.notify_all()
        status = 0  # the client went away before an answer
        try:
            state.gate.wait()
            if state.hold:
                time.sleep(state.hold)
            status = int(answer)
            body = json.dumps({"ok": status == 200}).encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", state.retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with state.lock:
                state.in_flight -= 1
                state.requests.append(Request(started, time.time(),
                                              self.headers.get("Idempotency-Key", ""),
                                              self.headers.get("X-Probe-Pid", ""), status))
                state.changed.notify_all()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up leaves a broken pipe behind


class ProbeServer:
    """A local HTTP server whose answers a test scripts; a context manager."""

    def __init__(self) -> None:
        self.state = _State()
        self._httpd = _HTTPServer((HOST, 0), _Handler)
        self._httpd.state = self.state
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://{HOST}:{self.port}/post"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ProbeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def answer(self, *statuses: int, then: int | None = None) -> None:
        """The next requests answer ``statuses`` in order, then ``then`` (if given)."""
        with self.state.lock:
            self.state.script.extend(str(s) for s in statuses)
            if then is not None:
                self.state.default = str(then)

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.requests)

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> None:
        """Wait until ``predicate(state)`` holds (a condition, not a measured time)."""
        deadline = time.monotonic() + timeout
        with self.state.changed:
            while not predicate(self.state):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the probe server never saw what was expected")
                self.state.changed.wait(left)


# ---------------------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------------------


class ProbeConnector(Connector):
    """A connector of one action, ``post``: a POST to a URL, guarded like any other."""

    kind = "webhook"

    def actions(self) -> Sequence[Action]:
        return [Action("post", self.post, effect="write", idempotent=True)]

    def post(self, url: str, call: ToolCall) -> dict[str, Any]:
        """POST to url with the call's idempotency key."""
        request = urllib.request.Request(url, data=b"{}", method="POST", headers={
            "Idempotency-Key": call.idempotency_key, "X-Probe-Pid": str(os.getpid()),
            "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.section.timeout) as response:
                return {"status": response.status, **json.loads(response.read())}
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 429:
                    wait = float(exc.headers.get("Retry-After") or 1)
                    raise Throttled(f"{url} answered 429: too many requests",
                                    retry_after=wait) from None
                if exc.code >= 500:
                    raise TransientError(f"{url} answered {exc.code}") from None
                raise DeterministicError(f"{url} answered {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientError(f"cannot reach {url}: {exc}") from None

    def test(self) -> str:
        return "a probe has nothing to check"


# ---------------------------------------------------------------------------------------
# A source
# ---------------------------------------------------------------------------------------


@dataclass
class ListSource:
    """A source whose events are a list; its cursor is the index of the next event.

    ``ignore_limit`` hands out everything after the cursor whatever ``limit`` says, as a
    source that cannot cut a batch (or a backlog that filled in the meantime) would;
    ``before_return`` runs inside ``poll``, after the cursor was read, to let a test act
    as another process would in that moment."""

    items: list[str]
    id: str = "list"
    interval: float = 0.1
    ignore_limit: bool = False
    before_return: Any = None
    polls: list[Any] = field(default_factory=list)  # the cursor of each poll

    def poll(self, cursor: Any, limit: int) -> Polled:
        self.polls.append(cursor)
        start = 0 if cursor is None else int(cursor)
        end = len(self.items) if self.ignore_limit else min(len(self.items), start + limit)
        events = [Received(f"d-{i}", "list.item", {"item": self.items[i], "index": i}, i + 1)
                  for i in range(start, end)]
        if self.before_return is not None:
            self.before_return()
        return Polled(events, end if events else cursor, more=end < len(self.items))


class ListProbe(ProbeConnector):
    """A probe with a source of three events, whose round trip always fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._source = ListSource(["one", "two", "three"])

    def sources(self) -> Sequence[ListSource]:
        return [self._source]

    def test(self) -> str:
        raise DeterministicError(f"cannot log in to {HOST}:1 as probe: authentication failed")


#: the value of registry.KINDS that builds a ListProbe
LIST_PROBE_KIND = "support.connectors:ListProbe"


# ---------------------------------------------------------------------------------------
# Processes with a probe as the webhook kind
# ---------------------------------------------------------------------------------------


def worker_environment() -> dict[str, str]:
    """The environment of a worker process: this checkout's sources and tests first."""
    import soloist

    sources = Path(soloist.__file__).resolve().parents[1]
    tests = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(sources), str(tests), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "SOLOIST_ACTOR": "tester"}


def main(argv: Sequence[str]) -> int:
    """``python -m support.connectors ROOT DATABASE_URL CONCURRENCY``: open the workspace
    with the probe as the webhook kind, say ``ready``, wait for a line on stdin, then run
    steps until none is left.

    ``python -m support.connectors cli ARGS...``: the ``soloist`` command itself, with a
    :class:`ListProbe` as the webhook kind."""
    from soloist.integrations import registry
    from soloist.workspace import Workspace

    if argv and argv[0] == "cli":
        from soloist.interfaces.cli.app import main as soloist

        registry.KINDS["webhook"] = LIST_PROBE_KIND
        sys.argv = ["soloist", *argv[1:]]
        soloist()  # exits with the command's code
    root, url, concurrency = argv
    registry.KINDS["webhook"] = PROBE_KIND  # this process's own table
    with Workspace(Path(root), database_url=url) as ws:
        worker = ws.worker(int(concurrency))
        print("ready", flush=True)
        sys.stdin.readline()
        worker.run(until_idle=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
