"""``GET /api/v1/overrides``: a person's edits of drafts at gates, with the read scope."""

from __future__ import annotations

from fastapi.testclient import TestClient
from support.runs import drain

from soloist.workspace import Workspace


def test_an_edit_at_a_gate_is_listed_with_its_before_after_and_reason(
        client: TestClient, ws: Workspace, tokens: dict[str, dict[str, str]]) -> None:
    run_id = ws.start("gated", {"who": "ada"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    ws.approve(pending.approval.id, "say it kindly",
               edits={0: {"path": "sent.txt", "line": "<script>hello</script> Ada"}})
    drain(ws, run_id)
    response = client.get("/api/v1/overrides", headers=tokens["read"])
    assert response.status_code == 200, response.text
    [item] = response.json()
    assert item["run"] == run_id and item["approval"] == pending.approval.id
    assert item["playbook"] == "gated" and item["step"] == "send"
    assert item["sources"] == []  # the line was no agent's draft
    assert item["before"] == {"path": "sent.txt", "line": "hello ada"}
    assert item["after"]["line"] == "<script>hello</script> Ada"
    assert item["reason"] == "say it kindly" and item["tool"] == "file.append"
    filtered = client.get("/api/v1/overrides", params={"playbook": "hello"},
                          headers=tokens["read"])
    assert filtered.json() == []
    assert client.get("/api/v1/overrides", params={"step": "send", "limit": 1},
                      headers=tokens["read"]).json() == [item]
    assert client.get("/api/v1/overrides", params={"limit": 0},
                      headers=tokens["read"]).status_code == 422
    assert client.get("/api/v1/overrides").status_code == 401
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/overrides"]
