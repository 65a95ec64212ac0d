"""No secret value in any API response: a seeded workspace whose runs, facts and log have
met a secret's value, and every GET route of the schema asked with real ids; the value
appears in none of them, in clear, base64 or hex."""

from __future__ import annotations

import base64
import re

from fastapi.testclient import TestClient
from support.runs import drain

from soloist.workspace import Workspace

SECRET = "s3cret-value-123"


def test_no_response_holds_a_secret_value(client: TestClient, ws: Workspace,
                                          tokens: dict[str, dict[str, str]]) -> None:
    ws.secrets.set("API_KEY", SECRET, "person:test")
    run_id = ws.start("hello", {"who": f"ada {SECRET}"})
    drain(ws, run_id)
    gated = ws.start("gated", {"who": SECRET})
    ws.worker().run(until_idle=True)
    ws.put_fact("clients/acme", "acme", "key", SECRET, f"pasted {SECRET} by mistake")
    approval = ws.approvals()[0].approval.id
    forms = (SECRET, base64.b64encode(SECRET.encode()).decode(), SECRET.encode().hex())
    ids = {"run_id": run_id, "approval_id": approval, "kind": "playbook", "name": "hello",
           "version": "1"}
    query = {"namespace": "clients/acme", "subject": "acme", "key": "key", "q": "acme",
             "from": 1, "to": 1}
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    asked = 0
    for path, item in paths.items():
        if "get" not in item or path.endswith("/stream"):
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        response = client.get(concrete, params=query, headers=tokens["admin"])
        assert response.status_code < 500, (path, response.text)
        for form in forms:
            assert form not in response.text, (path, form)
        asked += 1
    assert asked >= 15
    shown = client.get(f"/api/v1/runs/{run_id}", headers=tokens["read"]).json()
    assert shown["run"]["inputs"]["who"] == "ada [secret:API_KEY]"  # redacted when written
    assert ws.get_run(gated).state == "running"
