"""``GET /api/v1/workers`` (read) and ``POST /api/v1/workers/{id}/drain`` (admin)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from soloist.control.processes import Presence
from soloist.workspace import Workspace


def test_workers_are_listed_with_read_and_drained_only_with_admin(
        client: TestClient, ws: Workspace, tokens: dict[str, dict[str, str]]) -> None:
    for name in ("hostA:11:aa01", "hostB:7:ff00"):
        Presence(ws.store, name, "worker", 30.0).beat()
    ws.start("hello", {"who": "ada"})
    with ws.store.transaction() as tx:  # hostB holds the run's step
        assert len(tx.steps.claim("hostB:7:ff00", time.time(), 30.0, 1)) == 1
    response = client.get("/api/v1/workers", headers=tokens["read"])
    assert response.status_code == 200, response.text
    listed = response.json()
    assert [(w["id"], w["steps_in_hand"], w["draining"]) for w in listed] == [
        ("hostA:11:aa01", 0, False), ("hostB:7:ff00", 1, False)]
    assert listed[0]["pid"] and listed[0]["version"] and listed[0]["started_at"]
    assert client.get("/api/v1/workers").status_code == 401
    for scope in ("read", "run", "approve"):
        refused = client.post("/api/v1/workers/hostB/drain", headers=tokens[scope])
        assert refused.status_code == 403, scope
    assert not any(w.draining for w in ws.workers())
    drained = client.post("/api/v1/workers/hostB/drain", headers=tokens["admin"])
    assert drained.status_code == 200, drained.text
    assert drained.json()["id"] == "hostB:7:ff00" and drained.json()["draining"] is True
    [event] = [e for e in ws.log(limit=1000) if e.kind == "worker.drain"]
    assert event.actor == "token:admin-bot" and event.data["worker"] == "hostB:7:ff00"
    assert [w["draining"] for w in client.get("/api/v1/workers",
                                              headers=tokens["read"]).json()] == [False, True]
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/workers"]
    assert "post" in paths["/api/v1/workers/{worker_id}/drain"]


def test_draining_no_such_worker_is_a_404_and_an_ambiguous_one_a_422(
        client: TestClient, ws: Workspace, tokens: dict[str, dict[str, str]]) -> None:
    for name in ("hostA:11:aa01", "hostA:11:aa02"):
        Presence(ws.store, name, "worker", 30.0).beat()
    admin = tokens["admin"]
    missing = client.post("/api/v1/workers/nope/drain", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["kind"] == "not_found"
    assert "no live worker" in missing.json()["error"]["message"]
    both = client.post("/api/v1/workers/hostA/drain", headers=admin)
    assert both.status_code == 422
    assert "hostA:11:aa01, hostA:11:aa02" in both.json()["error"]["message"]
    hostile = client.post("/api/v1/workers/" + "%3Cscript%3E" * 40 + "/drain", headers=admin)
    assert hostile.status_code == 422
    assert client.post("/api/v1/workers/%3Cb%3E/drain", headers=admin).status_code == 404
    assert not any(w.draining for w in ws.workers())
