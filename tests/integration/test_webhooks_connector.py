"""Webhooks in and out, on SQLite and PostgreSQL: signed deliveries through the real
``soloist hooks`` server process, stored once per delivery id before the ``200`` and
started as playbooks by the scheduler; bad or stale signatures refused with nothing
stored; a full backlog answered ``503`` with ``Retry-After`` and nothing lost; outbound
posts to a real HTTP receiver, signed, with the intent's key, waiting out a ``429``."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.netutil import HOST, free_port, stop_process
from support.workspaces import write_workspace

from soloist.errors import DeterministicError, Throttled, TransientError, WrongSignature
from soloist.execution.context import ToolCall
from soloist.integrations.webhooks import sign, verify_headers
from soloist.workspace import Workspace

SRC = Path(__file__).resolve().parents[2] / "src"
SECRET = "whsec-test-0123456789"

TASKS = '''
def noop(ctx, **kw):
    return kw
'''

PLAYBOOKS = {
    "on_hook": """
name: on_hook
triggers:
  - event: webhook.received
    inputs: {order: "{{ event.payload.body.order }}", id: "{{ event.payload.delivery_id }}"}
steps:
  - {id: seen, python: "tasks:noop", args: {order: "{{ inputs.order }}"}}
""",
}
NOTIFY = {
    "notify": """
name: notify
steps:
  - id: post
    tool: hook.post
    args: {data: {order: "{{ inputs.order }}"}, event: order.paid}
""",
}


def _toml(extra: str = "") -> str:
    return f'''[connectors.hook]
kind = "webhook"
secret = "secret:HOOK_SECRET"
{extra}'''


def _workspace(tmp_path: Path, db_url: str, extra: str = "") -> Workspace:
    playbooks = {**PLAYBOOKS, **NOTIFY} if "url =" in extra else PLAYBOOKS
    root = write_workspace(tmp_path / "ws", playbooks, TASKS, toml=_toml(extra))
    ws = Workspace(root, database_url=db_url)
    ws.secrets.set("HOOK_SECRET", SECRET, "person:test")
    ws.deploy("person:test")
    return ws


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    with _workspace(tmp_path, db_url) as workspace:
        yield workspace


def delivery(order: str, delivery_id: str, *, now: float | None = None,
             secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"order": order}).encode()
    signed = sign(body, secret, now=time.time() if now is None else now)
    return {"Soloist-Signature": signed, "Webhook-Id": delivery_id,
            "Content-Type": "application/json"}, body


def stored(ws: Workspace) -> int:
    with ws.store.read() as tx:
        return sum(tx.inbound.backlogs().values())


def publish(ws: Workspace) -> None:
    scheduler = ws.scheduler("s")
    for _ in range(3):
        scheduler.tick()
    ws.worker().run(until_idle=True)


@pytest.fixture
def hooks_server(ws: Workspace, db_url: str) -> Iterator[str]:
    """``soloist hooks`` in its own process, on a free port; its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "SOLOIST_DATABASE_URL": db_url}
    process = subprocess.Popen(
        [sys.executable, "-c", "from soloist.interfaces.cli.app import main; main()",
         "hooks", "--port", str(port), "--workspace", str(ws.root)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        ready = process.stderr.readline().decode()
        assert f"ready at http://{HOST}:{port}/hooks/NAME" in ready, ready
        yield f"http://{HOST}:{port}"
    finally:
        stop_process(process)
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_signed_delivery_is_stored_once_and_starts_a_playbook(
        ws: Workspace, hooks_server: str) -> None:
    headers, body = delivery("A-17", "d-1")
    with httpx.Client(base_url=hooks_server) as http:
        first = http.post("/hooks/hook", content=body, headers=headers)
        assert (first.status_code, first.json()) == (200, {"accepted": True,
                                                           "delivery_id": "d-1"})
        again = http.post("/hooks/hook", content=body, headers=headers)
        assert (again.status_code, again.json()) == (200, {"duplicate": True,
                                                           "delivery_id": "d-1"})
        assert stored(ws) == 1

        unknown = http.post("/hooks/nobody", content=body, headers=headers)
        assert unknown.status_code == 404
        assert unknown.json() == {"error": "no connector takes deliveries at /hooks/nobody"}
        huge = http.post("/hooks/hook", content=b"x" * (1024 * 1024 + 1), headers=headers)
        assert huge.status_code == 413

    publish(ws)
    [run] = ws.runs(playbook="on_hook")
    assert run.state == "done" and run.inputs == {"order": "A-17", "id": "d-1"}
    assert stored(ws) == 0  # published
    [received] = [e for e in ws.log(limit=1000) if e.kind == "connector.received"]
    assert received.data["connector"] == "hook" and received.data["source"] == "hook"


def test_a_bad_or_stale_signature_is_refused_and_nothing_is_stored(
        ws: Workspace, hooks_server: str) -> None:
    forged = delivery("A-1", "d-1", secret="not-the-secret")
    stale = delivery("A-2", "d-2", now=time.time() - 301)
    unsigned = ({"Webhook-Id": "d-3"}, b"{}")
    with httpx.Client(base_url=hooks_server) as http:
        for (headers, body), says in ((forged, "does not match the body"),
                                      (stale, "s old, more than the 300 s allowed"),
                                      (unsigned, "has no Soloist-Signature header")):
            answer = http.post("/hooks/hook", content=body, headers=headers)
            assert answer.status_code == 401
            assert says in answer.json()["error"]
            assert SECRET not in answer.text
        headers, body = delivery("A-3", "d-4")
        tampered = http.post("/hooks/hook", content=body.replace(b"A-3", b"A-9"),
                             headers=headers)
        assert tampered.status_code == 401
        no_id = http.post("/hooks/hook", content=body,
                          headers={k: v for k, v in headers.items() if k != "Webhook-Id"})
        assert no_id.status_code == 400 and "Webhook-Id" in no_id.json()["error"]
    assert stored(ws) == 0
    publish(ws)
    assert ws.runs(playbook="on_hook") == []


def test_a_full_backlog_answers_503_and_loses_nothing(tmp_path: Path, db_url: str) -> None:
    with _workspace(tmp_path, db_url, "backlog = 2\n") as ws:
        replies = [ws.receive_webhook("hook", *delivery(f"A-{n}", f"d-{n}"))
                   for n in range(3)]
        assert [r.status for r in replies] == [200, 200, 503]
        assert replies[2].headers == {"Retry-After": "5"}
        assert "backlog" in replies[2].body["error"]
        assert ws.receive_webhook("hook", *delivery("A-0", "d-0")).body["duplicate"] is True
        assert stored(ws) == 2

        publish(ws)  # the scheduler makes room, and the sender's retry is taken
        assert ws.receive_webhook("hook", *delivery("A-2", "d-2")).status == 200
        publish(ws)
        orders = sorted(r.inputs["order"] for r in ws.runs(playbook="on_hook"))
        assert orders == ["A-0", "A-1", "A-2"]
        assert {r.state for r in ws.runs(playbook="on_hook")} == {"done"}
        status = ws.connector_status("hook")[0]
        assert status.backlog.get("hook", 0) == 0 and status.backlog_limit == 2


def test_a_body_that_is_not_json_is_kept_as_text(ws: Workspace) -> None:
    body = b"plain words"
    headers = {"Soloist-Signature": sign(body, SECRET, now=time.time()), "Webhook-Id": "t-1"}
    assert ws.receive_webhook("hook", headers, body).status == 200
    bad = b"\xff\xfe"
    headers = {"Soloist-Signature": sign(bad, SECRET, now=time.time()), "Webhook-Id": "t-2"}
    refused = ws.receive_webhook("hook", headers, bad)
    assert refused.status == 400 and "not UTF-8" in refused.body["error"]
    with ws.store.transaction() as tx:
        [row] = tx.inbound.take_batch("hook:hook", 10)
    assert row.payload["payload"]["body"] == "plain words"
    assert row.payload["topic"] == "webhook.received"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers from a script."""

    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        self.answers = answers
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.requests.append((dict(self.headers.items()), body))
                status, headers = (received.answers.pop(0) if received.answers
                                   else (200, {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}/in"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_a_post_is_signed_keyed_and_waits_out_a_429(tmp_path: Path, db_url: str) -> None:
    with Receiver([(429, {"Retry-After": "1"})]) as receiver, \
            _workspace(tmp_path, db_url, f'url = "{receiver.url}"\n') as ws:
        run_id = ws.start("notify", {"order": "A-17"})
        deadline = time.time() + 30
        while ws.get_run(run_id).state == "running" and time.time() < deadline:
            ws.worker().run(until_idle=True)
            time.sleep(0.1)
        assert ws.get_run(run_id).state == "done"
        [step] = ws.show(run_id).steps
        assert step.attempt == 1  # the 429 was a wait, not a failed attempt
        assert step.output == {"status": 200, "url": receiver.url}
        assert len(receiver.requests) == 2
        keys = set()
        for headers, body in receiver.requests:
            assert json.loads(body) == {"order": "A-17"}
            verify_headers(body, headers, [SECRET], now=time.time())
            keys.add(headers["Idempotency-Key"])
            assert headers["Webhook-Id"] == headers["Idempotency-Key"]
            assert headers["Soloist-Event"] == "order.paid"
        assert keys == {f"{run_id}/post/0"}
        with pytest.raises(WrongSignature):
            verify_headers(body, headers, ["another-secret"], now=time.time())
        assert "signed ping" in ws.test_connector("hook")
        assert json.loads(receiver.requests[-1][1]) == {"ping": True}


def test_post_failures_have_their_kinds(tmp_path: Path, db_url: str) -> None:
    answers = [(503, {}), (400, {}), (429, {"Retry-After": "7"})]
    with Receiver(answers) as receiver, \
            _workspace(tmp_path, db_url, f'url = "{receiver.url}"\ntimeout = 5\n') as ws:
        post = ws.tools.get("hook.post")
        call = ToolCall("r", "s", "r/s/0", str(ws.root))
        with pytest.raises(TransientError, match="answered 503"):
            post.invoke({"data": 1}, call)
        with pytest.raises(DeterministicError, match="answered 400"):
            post.invoke({"data": 1}, call)
        with pytest.raises(Throttled) as throttled:
            post.invoke({"data": 1}, call)
        assert throttled.value.retry_after == 7.0


def test_a_receiver_that_is_down_is_transient(tmp_path: Path, db_url: str) -> None:
    down = f"http://{HOST}:{free_port()}/in"
    with _workspace(tmp_path, db_url, f'url = "{down}"\n') as ws:
        with pytest.raises(TransientError, match="cannot POST"):
            ws.tools.get("hook.post").invoke({"data": 1}, ToolCall("r", "s", "r/s/0",
                                                                   str(ws.root)))


def test_without_a_url_it_only_receives(ws: Workspace) -> None:
    assert ws.test_connector("hook") == ("connector hook only receives: deliveries are "
                                         "taken at /hooks/hook")
    assert "hook.post" not in ws.tools.tools


def test_hooks_on_a_port_that_is_taken_says_so_in_one_sentence(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", "from soloist.interfaces.cli.app import main; main()",
             "hooks", "--port", str(port), "--workspace", str(root)],
            env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True,
            timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"error: cannot listen on {HOST}:{port}: ")
    assert len(done.stderr.strip().splitlines()) == 1
