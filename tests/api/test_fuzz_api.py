"""The whole OpenAPI schema, fuzzed with schemathesis against the real app on SQLite:
whatever a client sends, no answer is a 500 and every answer matches the schema (the
status is one the operation documents, the body its model). Bounded: a few thousand
requests, about a hundred per operation, with an admin token so the requests get past
authentication to the routes themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks
from support.workspaces import write_workspace

from soloist.interfaces.api.app import create_app
from soloist.workspace import Workspace

PLAYBOOK = """
name: hello
inputs: {type: object, properties: {who: {type: string}}}
steps:
  - {id: greet, tool: note, args: {text: "hi {{ inputs.who }}"}}
  - id: send
    tool: file.append
    args: {path: sent.txt, line: "hello {{ inputs.who }}"}
    gate: {message: "Send?"}
"""


def _httpx_kwargs(sent: dict[str, Any]) -> dict[str, Any]:
    """The request schemathesis made (``requests`` keywords) as httpx takes it: its own
    ``requests`` transport does not work beside urllib3-future (which caldav brings)."""
    out = {"method": sent["method"], "url": sent["url"],
           "headers": sent.get("headers") or {}, "params": sent.get("params")}
    if "json" in sent:
        out["json"] = sent["json"]
    elif sent.get("data") is not None:
        out["content"] = sent["data"]
    return out


#: no 500, and the answer is what the schema says (its status, content type, headers and
#: body); not "every schema-valid request succeeds": a valid run id that does not exist
#: is rightly a 404
CHECKS = [not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]
OPERATIONS_EXAMPLES = 60  # per operation: about 2,000 requests over the ~35 operations


def test_no_request_makes_a_500_or_breaks_the_schema(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"hello": PLAYBOOK})
    with Workspace(root) as ws:
        ws.deploy()
        for who in ("ada", "bob", "<script>"):
            ws.start("hello", {"who": who})
        ws.worker().run(until_idle=True)
        ws.put_fact("clients/acme", "acme", "rate", 120, "seed")
        headers = {"Authorization":
                   f"Bearer {ws.access.create_token('fuzzer', ['admin'], 'person:t').secret}"}
        app = create_app(ws)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        client = TestClient(app, raise_server_exceptions=False)
        calls = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path == "/api/v1/events/stream":
                continue  # never ends by itself: test_http_api reads it
            @given(case=operation.as_strategy())
            @settings(max_examples=OPERATIONS_EXAMPLES, deadline=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), database=None)
            def fuzz(case: Any) -> None:
                nonlocal calls
                calls += 1
                sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
                response = client.request(**_httpx_kwargs(sent))
                case.validate_response(response, headers=headers, checks=CHECKS)

            fuzz()
        assert calls > 1000
