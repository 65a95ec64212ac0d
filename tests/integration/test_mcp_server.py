"""Soloist's MCP server, driven by the ``mcp`` SDK's own client over both transports, on
both store backends: over stdio (``soloist mcp`` in a subprocess, acting as the local
operator) and over streamable HTTP (``build_http_app`` served by uvicorn on 127.0.0.1,
with bearer tokens and their scopes)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from starlette.applications import Starlette
from starlette.routing import Mount
from support.workspaces import write_workspace

import soloist
from soloist.interfaces.mcp import CALL_EVENT, build_http_app
from soloist.workspace import Workspace

SRC = str(Path(soloist.__file__).resolve().parents[1])
HOST = "127.0.0.1"

GREET = """
name: greet
description: Remember a greeting, then send it once a person agrees.
inputs: {type: object, properties: {who: {type: string}}, required: [who]}
steps:
  - id: remember
    tool: memory.put
    args: {namespace: customers, subject: "{{ inputs.who }}", key: greeting, value: hello,
           reason: "the greet playbook greeted them"}
  - id: send
    needs: [remember]
    tool: file.append
    args: {path: sent.txt, line: "hello {{ inputs.who }}"}
    gate: {message: "Send hello to {{ inputs.who }}?"}
"""
READ_TOOLS = {"list_playbooks", "get_run", "list_runs", "search_memory", "get_fact",
              "list_approvals"}
NO_VECTORS = '[memory.embeddings]\nprovider = "none"\n'
ALLOW = "[mcp]\nallow_approvals = true\n"


def workspace(tmp_path: Path, db_url: str, toml: str = "") -> Workspace:
    root = write_workspace(tmp_path / "ws", {"greet": GREET}, toml=NO_VECTORS + toml)
    ws = Workspace(root, database_url=db_url)
    ws.deploy("person:test")
    return ws


def until_waiting(ws: Workspace, run_id: str) -> None:
    """Work the run until it waits at its gate."""
    deadline = time.monotonic() + 60
    while not ws.approvals(run_id=run_id):
        assert time.monotonic() < deadline, f"run {run_id} never reached its gate"
        ws.worker().run(until_idle=True)


def result(reply: CallToolResult) -> Any:
    assert not reply.is_error, reply.content
    return reply.structured_content


def error_text(reply: CallToolResult) -> str:
    assert reply.is_error
    return " ".join(getattr(block, "text", "") for block in reply.content)


# -- stdio ------------------------------------------------------------------------------


def stdio(ws: Workspace, db_url: str) -> Client:
    return Client(StdioServerParameters(
        command=sys.executable,
        args=["-m", "soloist.interfaces.cli.app", "mcp", "-w", str(ws.root)],
        env={"PYTHONPATH": SRC, "SOLOIST_DATABASE_URL": db_url, "SOLOIST_ACTOR": "ada"}))


def test_stdio_serves_the_workspace_as_the_local_operator(tmp_path: Path, db_url: str
                                                          ) -> None:
    with workspace(tmp_path, db_url) as ws:
        async def session() -> None:
            async with stdio(ws, db_url) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                # approvals are off by default, even for the local operator
                assert set(tools) == READ_TOOLS | {"start_run"}
                for name in READ_TOOLS:
                    hints = tools[name].annotations
                    assert hints is not None and hints.read_only_hint is True
                    assert hints.idempotent_hint is True
                start = tools["start_run"].annotations
                assert start is not None and (start.read_only_hint, start.destructive_hint,
                                              start.idempotent_hint,
                                              start.open_world_hint) == (
                    False, False, False, True)

                [playbook] = result(await client.call_tool("list_playbooks", {}))["playbooks"]
                assert playbook["name"] == "greet"
                assert playbook["inputs"]["required"] == ["who"]

                refused = await client.call_tool("start_run", {"playbook": "greet",
                                                               "inputs": {"who": 7}})
                assert "7 is not of type 'string'" in error_text(refused)
                assert "Traceback" not in error_text(refused)
                missing = await client.call_tool("get_run", {"run_id": "r-nope"})
                assert "no run 'r-nope'" in error_text(missing)

                run = result(await client.call_tool(
                    "start_run", {"playbook": "greet", "inputs": {"who": "acme"}}))["run"]
                assert run["created_by"] == "person:ada" and run["state"] == "running"
                assert isinstance(run["created_at"], float)
                await anyio.to_thread.run_sync(until_waiting, ws, run["id"])

                detail = result(await client.call_tool("get_run", {"run_id": run["id"]}))
                assert detail["run"]["id"] == run["id"]
                assert {s["step_id"]: s["state"] for s in detail["steps"]}["remember"] == (
                    "done")
                assert [a["message"] for a in detail["approvals"]] == ["Send hello to acme?"]
                assert [(i["tool"], i["status"]) for i in detail["intents"]] == [
                    ("memory.put", "dispatched"), ("file.append", "staged")]

                runs = result(await client.call_tool("list_runs", {"state": "running",
                                                                   "playbook": "greet"}))
                assert [r["id"] for r in runs["runs"]] == [run["id"]]

                hits = result(await client.call_tool("search_memory", {"query": "acme"}))
                assert [(h["kind"], h["key"], h["value"]) for h in hits["hits"]] == [
                    ("fact", "acme/greeting", "hello")]

                fact = result(await client.call_tool("get_fact", {
                    "namespace": "customers", "subject": "acme", "key": "greeting"}))
                assert fact["fact"]["value"] == "hello"
                assert [(v["version"], v["run_id"], v["step_id"]) for v in
                        fact["history"]] == [(1, run["id"], "remember")]
                assert fact["why"][0]["version"]["reason"].startswith(
                    "the greet playbook greeted them")
                assert fact["why"][0]["events"], "why names the events of the writing step"

                [waiting] = result(await client.call_tool("list_approvals", {}))["approvals"]
                assert waiting["run_id"] == run["id"] and waiting["playbook"] == "greet"
                [intent] = waiting["intents"]
                assert intent["tool"] == "file.append"
                assert intent["args"] == {"path": "sent.txt", "line": "hello acme"}

                unknown = await client.call_tool("approve", {"approval_id": waiting["id"]})
                assert unknown.is_error  # not offered, so not callable either

        anyio.run(session)
        calls = [e for e in ws.log() if e.kind == CALL_EVENT]
        assert {e.actor for e in calls} == {"person:ada"}
        assert {e.data["tool"] for e in calls} == READ_TOOLS
        assert {"tool": "get_fact", "arguments": {
            "namespace": "customers", "subject": "acme", "key": "greeting"}} in [
            e.data for e in calls]
        assert not (ws.root / "sent.txt").exists()


def test_stdio_offers_approvals_when_the_workspace_allows_them(tmp_path: Path, db_url: str
                                                               ) -> None:
    with workspace(tmp_path, db_url, ALLOW) as ws:
        approved, rejected = ws.start("greet", {"who": "acme"}), ws.start("greet", {"who": "b"})
        until_waiting(ws, approved)
        until_waiting(ws, rejected)
        [first] = ws.approvals(run_id=approved)
        [second] = ws.approvals(run_id=rejected)

        async def session() -> None:
            async with stdio(ws, db_url) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                assert {"approve", "reject"} <= set(tools)
                for name in ("approve", "reject"):
                    description = tools[name].description or ""
                    assert "confirmation prompt is not a person's decision" in description
                    hints = tools[name].annotations
                    assert hints is not None and hints.read_only_hint is False
                decided = result(await client.call_tool("approve", {
                    "approval_id": first.approval.id, "note": "fine"}))["approval"]
                assert (decided["decision"], decided["decided_by"]) == ("approved",
                                                                        "person:ada")
                result(await client.call_tool("reject", {
                    "approval_id": second.approval.id, "reason": "not them"}))
                again = await client.call_tool("approve", {"approval_id": first.approval.id})
                assert again.is_error and "Traceback" not in error_text(again)

        anyio.run(session)
        ws.worker().run(until_idle=True)
        assert ws.get_run(approved).state == "done"
        assert ws.get_run(rejected).state == "failed"
        assert (ws.root / "sent.txt").read_text().count("hello acme") == 1


# -- streamable HTTP ----------------------------------------------------------------------


@contextmanager
def serving(ws: Workspace, *, mounted: bool = False) -> Iterator[str]:
    """``build_http_app(ws)`` served by uvicorn on 127.0.0.1 and a free port, in a thread,
    on its own or (``mounted``) at /mcp/ in another app, as the API mounts it (a mounted
    app gets no lifespan); the MCP endpoint's URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    app: Any = build_http_app(ws)
    if mounted:
        app = Starlette(routes=[Mount("/mcp", app=app)])
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port,
                                           log_config=None, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://{HOST}:{port}/mcp" + ("/" if mounted else "")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@asynccontextmanager
async def http_client(url: str, token: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


def raw_call(url: str, tool: str, arguments: dict[str, Any], token: str | None
             ) -> httpx2.Response:
    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}
    return httpx2.post(url, json=body, headers=headers, timeout=30)


def test_http_needs_a_token_and_the_scope_of_each_tool(tmp_path: Path, db_url: str) -> None:
    with workspace(tmp_path, db_url, ALLOW) as ws:
        reader = ws.access.create_token("reader", ["read"], "person:test").secret
        runner = ws.access.create_token("runner", ["run"], "person:test").secret
        approver = ws.access.create_token("approver", ["approve"], "person:test").secret
        with serving(ws, mounted=True) as url:
            for token in (None, "sol_tok_not-a-token"):
                refused = raw_call(url, "list_runs", {}, token)
                assert refused.status_code == 401
                assert refused.json()["error"]["kind"] == "unauthenticated"
            denied = raw_call(url, "start_run", {"playbook": "greet",
                                                 "inputs": {"who": "acme"}}, reader)
            assert denied.status_code == 403
            assert denied.json()["error"] == {
                "kind": "permission_denied",
                "message": "the token 'reader' does not have the 'run' scope that "
                           "start_run needs"}
            assert raw_call(url, "approve", {"approval_id": "a-x"}, runner).status_code == 403

            async def as_reader() -> None:
                async with http_client(url, reader) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert names == READ_TOOLS | {"start_run"}
                    assert result(await client.call_tool("list_runs", {})) == {"runs": []}
                    with pytest.raises(MCPError):  # the 403, as the SDK's client says it
                        await client.call_tool("start_run", {"playbook": "greet",
                                                             "inputs": {"who": "acme"}})

            anyio.run(as_reader)
            assert ws.runs() == []
            [read] = [e for e in ws.log() if e.kind == CALL_EVENT]
            assert (read.actor, read.data) == ("token:reader", {
                "tool": "list_runs",
                "arguments": {"state": None, "playbook": None, "limit": 50}})

            async def as_runner() -> str:
                async with http_client(url, runner) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert "approve" not in names  # a run token may not decide
                    bad = await client.call_tool("start_run", {"playbook": "greet",
                                                               "inputs": {}})
                    assert "'who' is a required property" in error_text(bad)
                    run = result(await client.call_tool("start_run", {
                        "playbook": "greet", "inputs": {"who": "acme"}}))["run"]
                    return str(run["id"])

            run_id = anyio.run(as_runner)
            assert ws.get_run(run_id).created_by == "token:runner"
            [created] = [e for e in ws.log(run_id=run_id) if e.kind == "run.created"]
            assert created.actor == "token:runner"
            until_waiting(ws, run_id)
            [waiting] = ws.approvals(run_id=run_id)

            async def as_approver() -> dict[str, Any]:
                async with http_client(url, approver) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert {"approve", "reject"} <= names
                    [listed] = result(await client.call_tool("list_approvals", {
                        "run_id": run_id}))["approvals"]
                    assert listed["intents"][0]["args"]["line"] == "hello acme"
                    decided: dict[str, Any] = result(await client.call_tool("approve", {
                        "approval_id": waiting.approval.id}))["approval"]
                    return decided

            decided = anyio.run(as_approver)
            assert decided["decided_by"] == "token:approver"
            ws.worker().run(until_idle=True)
            assert ws.get_run(run_id).state == "done"
            decisions = [e for e in ws.log(run_id=run_id) if e.actor == "token:approver"]
            assert decisions, "the approval is in the log under the token's name"
            assert "hello acme" in (ws.root / "sent.txt").read_text()

            ws.access.revoke_token("reader", "person:test")
            assert raw_call(url, "list_runs", {}, reader).status_code == 401


def test_http_offers_no_approvals_unless_the_workspace_allows_them(tmp_path: Path,
                                                                   sqlite_url: str) -> None:
    with workspace(tmp_path, sqlite_url) as ws:
        admin = ws.access.create_token("boss", ["admin"], "person:test").secret
        run_id = ws.start("greet", {"who": "acme"})
        until_waiting(ws, run_id)
        [waiting] = ws.approvals(run_id=run_id)
        with serving(ws) as url:
            async def as_admin() -> None:
                async with http_client(url, admin) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert names == READ_TOOLS | {"start_run"}
                    reply = await client.call_tool("approve", {
                        "approval_id": waiting.approval.id})
                    assert reply.is_error

            anyio.run(as_admin)
        assert ws.approvals(run_id=run_id), "nobody decided"


def test_http_calls_at_once_are_each_logged_under_their_own_token(tmp_path: Path,
                                                                   sqlite_url: str) -> None:
    with workspace(tmp_path, sqlite_url) as ws:
        secrets = {name: ws.access.create_token(name, ["read"], "person:test").secret
                   for name in ("left", "right")}
        with serving(ws, mounted=True) as url:
            async def calls(name: str) -> None:
                async with http_client(url, secrets[name]) as client:
                    for n in range(5):
                        await client.call_tool("list_runs", {"limit": n + 1})

            async def both() -> None:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(calls, "left")
                    tg.start_soon(calls, "right")

            anyio.run(both)
        seen = sorted((e.actor, e.data["arguments"]["limit"]) for e in ws.log()
                      if e.kind == CALL_EVENT)
        assert seen == sorted((f"token:{name}", n + 1) for name in ("left", "right")
                              for n in range(5))


def test_no_answer_and_no_logged_call_holds_a_secret_value(tmp_path: Path, db_url: str
                                                            ) -> None:
    secret = "sk_live_mcp-4f9a27c1e0b3d865"
    with workspace(tmp_path, db_url) as ws:
        ws.secrets.set("stripe_key", secret, "person:test")
        token = ws.access.create_token("runner", ["run"], "person:test").secret
        with serving(ws) as url:
            async def start() -> str:
                async with http_client(url, token) as client:
                    run = result(await client.call_tool("start_run", {
                        "playbook": "greet", "inputs": {"who": f"acme {secret}"}}))["run"]
                    assert secret not in json.dumps(run)
                    return str(run["id"])

            run_id = anyio.run(start)
            until_waiting(ws, run_id)

            async def read() -> list[Any]:
                async with http_client(url, token) as client:
                    [fact] = ws.facts("customers")
                    answers = [
                        await client.call_tool("get_run", {"run_id": run_id}),
                        await client.call_tool("list_runs", {}),
                        await client.call_tool("list_approvals", {}),
                        await client.call_tool("search_memory", {"query": f"acme {secret}"}),
                        await client.call_tool("get_fact", {
                            "namespace": "customers", "subject": fact.subject,
                            "key": "greeting"}),
                    ]
                    return [result(answer) for answer in answers]

            answers = anyio.run(read)
        assert "[secret:stripe_key]" in json.dumps(answers)
        assert secret not in json.dumps(answers)
        assert secret not in json.dumps([e.data for e in ws.log()])
