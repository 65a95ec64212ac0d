"""The dashboard's ``/overrides``: each edit of a draft at a gate, escaped, linked to its
run and approval."""

from __future__ import annotations

from fastapi.testclient import TestClient
from support.runs import drain

from soloist.workspace import Workspace


def test_overrides_are_listed_escaped_with_links(browser: TestClient, ws: Workspace) -> None:
    assert "No overrides yet" in browser.get("/overrides").text
    run_id = ws.start("mail", {"who": "ada"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    args = dict(pending.intents[0].args)
    ws.approve(pending.approval.id, "<b>warmer</b>",
               edits={0: {**args, "body": "Dear Ada, <script>alert(1)</script>"}})
    drain(ws, run_id)
    page = browser.get("/overrides")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/overrides" aria-current="page">Overrides</a>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&lt;b&gt;warmer&lt;/b&gt;" in html
    assert "Dear ada, hi." in html  # the body as it was proposed
    assert f'href="/runs/{run_id}"' in html
    assert f'href="/runs/{run_id}#approval-{pending.approval.id}"' in html
    assert f'id="approval-{pending.approval.id}"' in browser.get(f"/runs/{run_id}").text
    assert "No overrides yet" in browser.get("/overrides", params={"playbook": "hello"}).text


def test_the_overrides_page_needs_a_sign_in(anonymous: TestClient) -> None:
    response = anonymous.get("/overrides", follow_redirects=False)
    assert response.status_code == 401 and "soloist up" in response.text
