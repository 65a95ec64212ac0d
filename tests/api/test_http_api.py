"""The HTTP API against the real app, on both backends: every route answers through the
workspace's service methods, every error has one shape and the status that says what it
is, and every action is logged under the token's name."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.runs import drain

from soloist.workspace import Workspace

Headers = dict[str, dict[str, str]]


def error_of(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and body["error"]["kind"] == kind, body
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_every_route_needs_a_valid_token(client: TestClient, ws: Workspace) -> None:
    error_of(client.get("/api/v1/runs"), 401, "unauthenticated")
    error_of(client.get("/api/v1/runs", headers={"Authorization": "Bearer nope"}), 401,
             "unauthenticated")
    issued = ws.access.create_token("gone", ["admin"], "person:test")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert client.get("/api/v1/runs", headers=headers).status_code == 200
    ws.access.revoke_token("gone", "person:test")
    error_of(client.get("/api/v1/runs", headers=headers), 401, "unauthenticated")
    assert client.get("/api/v1/runs").headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/v1/runs", {"playbook": "hello", "inputs": {"who": "ada"}}),
    ("post", "/api/v1/runs/r-x/cancel", None),
    ("post", "/api/v1/approvals/a-x/approve", {}),
    ("post", "/api/v1/approvals/a-x/reject", {"reason": "no"}),
    ("post", "/api/v1/approvals/batch/approve", {"ids": ["a-x"]}),
    ("post", "/api/v1/definitions/deploy", None),
    ("post", "/api/v1/definitions/playbook/hello/rollback", {"version": 1}),
    ("put", "/api/v1/memory/fact?namespace=n&subject=s&key=k", {"value": 1, "reason": "r"}),
])
def test_a_read_token_cannot_change_anything(client: TestClient, tokens: Headers,
                                             method: str, path: str,
                                             body: dict[str, Any] | None) -> None:
    response = client.request(method, path, json=body, headers=tokens["read"])
    assert "read-bot" in error_of(response, 403, "permission_denied")["message"]


def test_start_list_and_show_a_run(client: TestClient, tokens: Headers,
                                   ws: Workspace) -> None:
    started = client.post("/api/v1/runs", json={"playbook": "hello",
                                                 "inputs": {"who": "ada"}},
                          headers=tokens["run"])
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    drain(ws, run_id)
    assert ws.get_run(run_id).created_by == "token:run-bot"
    page = client.get("/api/v1/runs", headers=tokens["read"]).json()
    assert [r["id"] for r in page["runs"]] == [run_id] and page["next_cursor"] is None
    detail = client.get(f"/api/v1/runs/{run_id}", headers=tokens["read"]).json()
    assert detail["run"]["state"] == "done"
    assert [s["step_id"] for s in detail["steps"]] == ["greet"]
    assert detail["steps"][0]["output"] == {"step": "greet", "who": "ada"}
    events = client.get(f"/api/v1/runs/{run_id}/events", headers=tokens["read"]).json()
    assert events["events"][0]["kind"] == "run.created"
    assert events["events"][0]["actor"] == "token:run-bot"


def test_bad_input_is_a_422_naming_the_field(client: TestClient, tokens: Headers) -> None:
    missing = client.post("/api/v1/runs", json={"playbook": "hello", "inputs": {}},
                          headers=tokens["run"])
    assert "who" in error_of(missing, 422, "input_error")["message"]
    wrong = client.post("/api/v1/runs", json={"playbook": "hello",
                                              "inputs": {"who": "a", "n": "x"}},
                        headers=tokens["run"])
    assert error_of(wrong, 422, "input_error")["field"] == "inputs.n"
    shape = client.post("/api/v1/runs", json={"inputs": {}}, headers=tokens["run"])
    assert error_of(shape, 422, "request_invalid")["field"] == "playbook"
    assert error_of(client.get("/api/v1/runs?state=sleeping", headers=tokens["read"]), 422,
                    "request_invalid")["field"] == "state"
    error_of(client.get("/api/v1/runs?cursor=zzz", headers=tokens["read"]), 422,
             "input_error")
    error_of(client.post("/api/v1/runs", content=b"{not json", headers={
        **tokens["run"], "Content-Type": "application/json"}), 422, "request_invalid")


def test_unknown_things_are_404_and_illegal_moves_409(client: TestClient, tokens: Headers,
                                                      ws: Workspace) -> None:
    error_of(client.get("/api/v1/runs/r-nope", headers=tokens["read"]), 404, "not_found")
    error_of(client.post("/api/v1/runs", json={"playbook": "nope"}, headers=tokens["run"]),
             404, "not_found")
    error_of(client.get("/api/v1/nowhere", headers=tokens["read"]), 404, "not_found")
    run_id = ws.start("hello", {"who": "ada"})
    drain(ws, run_id)
    error_of(client.post(f"/api/v1/runs/{run_id}/cancel", headers=tokens["run"]), 409,
             "invalid_state")


def test_runs_are_filtered_and_paged_newest_first(client: TestClient, tokens: Headers,
                                                  ws: Workspace) -> None:
    ids = [ws.start("hello", {"who": f"client {i}"}) for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/runs", params=params, headers=tokens["read"]).json()
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    found = client.get("/api/v1/runs", params={"q": "client 4", "count": True},
                       headers=tokens["read"]).json()
    assert [r["id"] for r in found["runs"]] == [ids[4]] and found["total"] == 1
    by_state = client.get("/api/v1/runs", params={"state": "running", "playbook": "hello",
                                                  "version": 1}, headers=tokens["read"])
    assert len(by_state.json()["runs"]) == 7


def test_a_gate_is_approved_or_rejected_by_the_token(
        client: TestClient, tokens: Headers, ws: Workspace) -> None:
    first = ws.start("gated", {"who": "ada"})
    second = ws.start("gated", {"who": "bob"})
    ws.worker().run(until_idle=True)
    listed = client.get("/api/v1/approvals", headers=tokens["read"]).json()
    assert [a["approval"]["created_at"] for a in listed] == sorted(
        a["approval"]["created_at"] for a in listed)  # oldest first
    inbox = sorted(listed, key=lambda a: [first, second].index(a["approval"]["run_id"]))
    assert [a["approval"]["run_id"] for a in inbox] == [first, second]
    assert inbox[0]["intents"][0]["args"] == {"path": "sent.txt", "line": "hello ada"}
    approval = inbox[0]["approval"]["id"]
    error_of(client.post(f"/api/v1/approvals/{approval}/reject", json={},
                         headers=tokens["approve"]), 422, "request_invalid")
    decided = client.post(f"/api/v1/approvals/{approval}/approve", json={"note": "fine"},
                          headers=tokens["approve"]).json()
    assert decided["id"] == approval
    again = client.post(f"/api/v1/approvals/{approval}/approve", json={},
                        headers=tokens["approve"])
    assert again.status_code in (404, 409)
    rejected = client.post(f"/api/v1/approvals/{inbox[1]['approval']['id']}/reject",
                           json={"reason": "not bob"}, headers=tokens["approve"])
    assert rejected.status_code == 200, rejected.text
    drain(ws, first)
    assert (ws.root / "sent.txt").read_text().endswith("\thello ada\n")  # once
    assert ws.get_run(second).state == "failed"
    decisions = [e for e in ws.log() if e.kind == "approval.decided"]
    assert {e.actor for e in decisions} == {"token:approve-bot"}


def test_batch_approve_says_which_could_not(client: TestClient, tokens: Headers,
                                           ws: Workspace) -> None:
    runs = [ws.start("gated", {"who": w}) for w in ("a", "b")]
    ws.worker().run(until_idle=True)
    ids = [p.approval.id for p in ws.approvals()]
    result = client.post("/api/v1/approvals/batch/approve",
                         json={"ids": [*ids, "a-missing"]}, headers=tokens["approve"]).json()
    assert sorted(a["id"] for a in result["decided"]) == sorted(ids)
    assert result["refused"]["a-missing"]["kind"] == "not_found"
    for run_id in runs:
        drain(ws, run_id)


def test_the_registry_lists_versions_diffs_and_rolls_back(
        client: TestClient, tokens: Headers, ws: Workspace) -> None:
    path = ws.root / "playbooks" / "hello.yaml"
    path.write_text(path.read_text().replace("greet", "welcome"))
    deployed = client.post("/api/v1/definitions/deploy", headers=tokens["admin"]).json()
    assert {"kind": "playbook", "name": "hello", "version": 2} in deployed["deployed"]
    versions = client.get("/api/v1/definitions/playbook/hello", headers=tokens["read"]).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["deployed_by"] == "token:admin-bot"
    diff = client.get("/api/v1/definitions/playbook/hello/diff", params={"from": 1, "to": 2},
                      headers=tokens["read"])
    assert "-- id: greet" in diff.json()["diff"] and "+- id: welcome" in diff.json()["diff"]
    back = client.post("/api/v1/definitions/playbook/hello/rollback", json={"version": 1},
                       headers=tokens["admin"]).json()
    assert back["version"] == 3 and back["to_version"] == 1
    one = client.get("/api/v1/definitions/playbook/hello/1", headers=tokens["read"]).json()
    assert one["body"]["steps"][0]["id"] == "greet"
    error_of(client.get("/api/v1/definitions/playbook/hello/9", headers=tokens["read"]),
             404, "not_found")
    error_of(client.get("/api/v1/definitions/widget/x", headers=tokens["read"]), 422,
             "request_invalid")


def test_memory_put_history_why_and_search(client: TestClient, tokens: Headers) -> None:
    where = {"namespace": "clients/acme", "subject": "acme", "key": "rate"}
    put = client.put("/api/v1/memory/fact", params=where,
                     json={"value": 120, "reason": "agreed on the call"},
                     headers=tokens["admin"])
    assert put.status_code == 200, put.text
    client.put("/api/v1/memory/fact", params=where, json={"value": 130, "reason": "raised"},
               headers=tokens["admin"])
    fact = client.get("/api/v1/memory/fact", params=where, headers=tokens["read"]).json()
    assert fact["value"] == 130 and fact["actor"] == "token:admin-bot"
    history = client.get("/api/v1/memory/fact/history", params=where,
                         headers=tokens["read"]).json()
    assert [h["value"] for h in history] == [120, 130]
    why = client.get("/api/v1/memory/fact/why", params=where, headers=tokens["read"]).json()
    assert why[0]["version"]["reason"] in ("agreed on the call", "raised")
    reverted = client.post("/api/v1/memory/fact/revert", params=where,
                           json={"version": 1, "reason": "mistake"}, headers=tokens["admin"])
    assert reverted.json()["value"] == 120
    hits = client.get("/api/v1/memory/search", params={"q": "rate"},
                      headers=tokens["read"]).json()
    assert isinstance(hits, list)
    error_of(client.get("/api/v1/memory/fact", params={**where, "key": "none"},
                        headers=tokens["read"]), 404, "not_found")


def test_events_metrics_and_audit(client: TestClient, tokens: Headers,
                                  ws: Workspace) -> None:
    run_id = ws.start("hello", {"who": "ada"})
    drain(ws, run_id)
    page = client.get("/api/v1/events", params={"kind": "step.*"},
                      headers=tokens["read"]).json()
    assert page["events"] and all(e["kind"].startswith("step.") for e in page["events"])
    metrics = client.get("/api/v1/metrics", headers=tokens["read"]).json()
    assert metrics["completion_rate"] == 1.0
    one = client.get("/api/v1/metrics", params={"playbook": "hello"},
                     headers=tokens["read"]).json()
    assert one["playbook"] == "hello" and one["completion_rate"] == 1.0
    assert [c["name"] for c in one["changes"]] == ["hello"]
    series = client.get("/api/v1/metrics/series", params={"days": 2},
                        headers=tokens["read"]).json()
    assert sum(day["done"] for day in series) == 1
    scraped = client.get("/metrics", headers=tokens["read"])
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE soloist_queue_depth gauge" in scraped.text
    error_of(client.get("/metrics"), 401, "unauthenticated")
    assert client.get("/api/v1/audit/verify", headers=tokens["read"]).json()["ok"] is True
    assert client.get("/api/v1/connectors", headers=tokens["read"]).json() == []
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_a_login_link_signs_in_once_and_the_cookie_needs_csrf_to_change_things(
        client: TestClient, ws: Workspace) -> None:
    from soloist.interfaces.api.auth import COOKIE, csrf_token

    link = ws.access.login_link("person:test")
    signed = client.get("/login", params={"token": link.secret}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.cookies[COOKIE]
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert "samesite=lax" in signed.headers["set-cookie"].lower()
    client.cookies.set(COOKIE, cookie)
    assert client.get("/api/v1/runs").status_code == 200
    start = {"playbook": "hello", "inputs": {"who": "ada"}}
    error_of(client.post("/api/v1/runs", json=start), 403, "permission_denied")
    made = client.post("/api/v1/runs", json=start, headers={"X-CSRF-Token": csrf_token(cookie)})
    assert made.status_code == 201
    assert ws.get_run(made.json()["run_id"]).created_by == f"person:{ws.settings.actor}"
    client.cookies.clear()
    again = client.get("/login", params={"token": link.secret}, follow_redirects=False)
    error_of(again, 401, "unauthenticated")  # a link works once


def test_failed_sign_ins_from_one_address_are_slowed_down(client: TestClient,
                                                         ws: Workspace) -> None:
    for _ in range(10):
        error_of(client.get("/api/v1/runs", headers={"Authorization": "Bearer guess"}), 401,
                 "unauthenticated")
    good = ws.access.create_token("late", ["read"], "person:test").secret
    refused = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {good}"})
    error_of(refused, 429, "too_many_attempts")
    assert int(refused.headers["retry-after"]) >= 1


def test_mcp_is_served_at_slash_mcp_with_the_same_tokens(client: TestClient,
                                                         tokens: Headers) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "start_run", "arguments": {"playbook": "hello"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    assert client.post("/mcp/", json=call, headers=headers).status_code == 401
    refused = client.post("/mcp/", json=call, headers={**headers, **tokens["read"]})
    assert refused.status_code == 403


def test_edit_then_approve_sends_the_edit_and_keeps_the_original(
        client: TestClient, tokens: Headers, ws: Workspace) -> None:
    run_id = ws.start("gated", {"who": "ada"})
    ws.worker().run(until_idle=True)
    [item] = client.get("/api/v1/approvals", headers=tokens["read"]).json()
    approval = item["approval"]["id"]
    bad = client.post(f"/api/v1/approvals/{approval}/approve", headers=tokens["approve"],
                      json={"edits": [{"idx": 0, "args": {"path": "sent.txt"}}]})
    assert error_of(bad, 422, "input_error")["field"] == "edits.0"
    missing = client.post(f"/api/v1/approvals/{approval}/approve", headers=tokens["approve"],
                          json={"edits": [{"idx": 5, "args": {}}]})
    error_of(missing, 422, "input_error")
    edited = {"path": "sent.txt", "line": "Hello Ada, warmly"}
    done = client.post(f"/api/v1/approvals/{approval}/approve", headers=tokens["approve"],
                       json={"note": "warmer", "edits": [{"idx": 0, "args": edited}]})
    assert done.status_code == 200, done.text
    drain(ws, run_id)
    assert (ws.root / "sent.txt").read_text().endswith("\tHello Ada, warmly\n")
    [override] = [e for e in ws.log(run_id=run_id) if e.kind == "approval.override"]
    assert override.actor == "token:approve-bot"
    assert override.data["before"] == {"path": "sent.txt", "line": "hello ada"}
    assert override.data["after"] == edited and override.data["reason"] == "warmer"


def test_bulk_cancel_needs_the_count_the_person_saw(client: TestClient, tokens: Headers,
                                                    ws: Workspace) -> None:
    gated = [ws.start("gated", {"who": w}) for w in ("a", "b", "c")]
    other = ws.start("hello", {"who": "z"})
    stale = client.post("/api/v1/runs/cancel", json={"playbook": "gated", "confirm_count": 2},
                        headers=tokens["run"])
    assert "matches 3 running runs now" in error_of(stale, 409, "invalid_state")["message"]
    assert all(ws.get_run(r).state == "running" for r in gated)
    done = client.post("/api/v1/runs/cancel", json={"playbook": "gated", "confirm_count": 3},
                       headers=tokens["run"]).json()
    assert sorted(done["runs"]) == sorted(gated) and done["skipped"] == {}
    assert {ws.get_run(r).state for r in gated} == {"cancelled"}
    assert ws.get_run(other).state == "running"
    assert {e.actor for e in ws.log() if e.kind == "run.cancelled"} == {"token:run-bot"}


def test_a_failed_run_is_retried_from_its_failed_step(client: TestClient, tokens: Headers,
                                                      ws: Workspace) -> None:
    failed = ws.start("broken")
    drain(ws, failed, "failed")
    retried = client.post(f"/api/v1/runs/{failed}/retry", headers=tokens["run"])
    assert retried.status_code == 200 and retried.json()["state"] == "running"
    drain(ws, failed, "failed")  # it fails again: the step still raises
    assert [e.actor for e in ws.log(run_id=failed) if e.kind == "run.retried"] == [
        "token:run-bot"]
    error_of(client.post(f"/api/v1/runs/{failed}/retry", headers=tokens["read"]), 403,
             "permission_denied")
    done = ws.start("hello", {"who": "ada"})
    drain(ws, done)
    error_of(client.post(f"/api/v1/runs/{done}/retry", headers=tokens["run"]), 409,
             "invalid_state")
    bulk = client.post("/api/v1/runs/retry", json={"playbook": "broken", "confirm_count": 1},
                       headers=tokens["run"]).json()
    assert bulk["runs"] == [failed]
