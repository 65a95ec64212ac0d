"""Webhooks in through the API's ``/hooks/NAME`` (what ``soloist up`` serves): a signed
delivery stored once before its ``200``, a forged one refused, a large one refused before
it is read whole; no bearer token is asked for (the signature is the authentication)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.workspaces import write_workspace

from soloist.integrations.webhooks import sign
from soloist.interfaces.api.app import create_app
from soloist.workspace import Workspace

SECRET = "whsec-test-0123456789"
PLAYBOOK = """
name: on_hook
triggers:
  - event: webhook.received
    inputs: {order: "{{ event.payload.body.order }}"}
steps:
  - {id: seen, tool: note, args: {text: "order {{ inputs.order }}"}}
"""


@pytest.fixture
def hooked(tmp_path: Path, db_url: str) -> Iterator[tuple[Workspace, TestClient]]:
    root = write_workspace(tmp_path / "ws", {"on_hook": PLAYBOOK}, toml=(
        '[connectors.hook]\nkind = "webhook"\nsecret = "secret:HOOK_SECRET"\n'))
    with Workspace(root, database_url=db_url) as ws:
        ws.secrets.set("HOOK_SECRET", SECRET, "person:test")
        ws.deploy("person:test")
        with TestClient(create_app(ws), raise_server_exceptions=False) as client:
            yield ws, client


def delivery(order: str, delivery_id: str, secret: str = SECRET) -> tuple[dict[str, str],
                                                                         bytes]:
    body = json.dumps({"order": order}).encode()
    return {"Soloist-Signature": sign(body, secret, now=time.time()),
            "Webhook-Id": delivery_id, "Content-Type": "application/json"}, body


def stored(ws: Workspace) -> int:
    with ws.store.read() as tx:
        return sum(tx.inbound.backlogs().values())


def test_a_signed_delivery_is_stored_once_and_a_forged_one_refused(
        hooked: tuple[Workspace, TestClient]) -> None:
    ws, client = hooked
    headers, body = delivery("A-17", "d-1")
    first = client.post("/hooks/hook", content=body, headers=headers)
    assert (first.status_code, first.json()) == (200, {"accepted": True, "delivery_id": "d-1"})
    again = client.post("/hooks/hook", content=body, headers=headers)
    assert again.json() == {"duplicate": True, "delivery_id": "d-1"}
    forged_headers, forged = delivery("A-2", "d-2", secret="not-the-secret")
    refused = client.post("/hooks/hook", content=forged, headers=forged_headers)
    assert refused.status_code == 401 and SECRET not in refused.text
    assert client.post("/hooks/nobody", content=body, headers=headers).status_code == 404
    huge = client.post("/hooks/hook", content=b"x" * (1024 * 1024 + 1), headers=headers)
    assert huge.status_code == 413
    assert stored(ws) == 1
