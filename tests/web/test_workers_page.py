"""The dashboard's ``/workers``: the live workers with the steps in their hands, escaped."""

from __future__ import annotations

from fastapi.testclient import TestClient

from soloist.control.processes import Presence
from soloist.workspace import Workspace


def test_the_live_workers_are_listed(browser: TestClient, ws: Workspace) -> None:
    assert "No live worker" in browser.get("/workers").text
    Presence(ws.store, "hostA:11:<b>aa</b>", "worker", 30.0).beat()
    Presence(ws.store, "hostB:7:ff00", "worker", 30.0).beat()
    ws.drain_worker("hostB")
    page = browser.get("/workers")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/workers" aria-current="page">Workers</a>' in html
    assert "hostA:11:&lt;b&gt;aa&lt;/b&gt;" in html and "<b>aa" not in html
    assert "hostB:7:ff00" in html and html.count(">draining<") == 1


def test_the_workers_page_needs_a_sign_in(anonymous: TestClient) -> None:
    response = anonymous.get("/workers", follow_redirects=False)
    assert response.status_code == 401
