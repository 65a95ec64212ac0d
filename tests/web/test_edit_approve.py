"""Edit then approve in the inbox: the person's wording goes out, the original is kept
beside it in the log, and a bad edit changes nothing."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from support.runs import drain

from soloist.interfaces.api.auth import COOKIE, csrf_token
from soloist.workspace import Workspace


def test_the_email_is_sent_as_edited_and_the_original_is_kept(browser: TestClient,
                                                              ws: Workspace) -> None:
    run_id = ws.start("mail", {"who": "ada"})
    ws.worker().run(until_idle=True)
    [pending] = ws.approvals()
    page = browser.get("/approvals").text
    assert f'action="/approvals/{pending.approval.id}/edit"' in page
    assert 'name="body-0"' in page and 'name="subject-0"' in page
    token = csrf_token(browser.cookies[COOKIE])
    args = dict(pending.intents[0].args)
    bad = browser.post(f"/approvals/{pending.approval.id}/edit", data={
        "csrf": token, "args-0": "{not json", "note": "x"})
    assert bad.status_code == 422 and "not JSON" in bad.text
    refused = browser.post(f"/approvals/{pending.approval.id}/edit", data={
        "csrf": token, "args-0": json.dumps({"to": "ada@example.com"}), "note": "x"})
    assert refused.status_code == 422  # the tool needs a subject and a body
    assert ws.approvals()[0].approval.decision is None  # nothing changed
    done = browser.post(f"/approvals/{pending.approval.id}/edit", data={
        "csrf": token, "args-0": json.dumps(args), "subject-0": "Hello Ada",
        "body-0": "Dear Ada, warmly.", "note": "warmer"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    drain(ws, run_id)
    [override] = [e for e in ws.log(run_id=run_id) if e.kind == "approval.override"]
    assert override.data["before"]["subject"] == "Hello <b>ada</b>"
    assert override.data["after"]["body"] == "Dear Ada, warmly."
    assert override.actor == f"person:{ws.settings.actor}"
    [sent] = ws.show(run_id).intents
    assert sent.status == "dispatched" and sent.args["body"] == "Dear Ada, warmly."
    assert sent.args["subject"] == "Hello Ada"


def test_the_filtered_running_runs_are_cancelled_at_the_typed_count(browser: TestClient,
                                                                    ws: Workspace) -> None:
    runs = [ws.start("gated", {"who": w}) for w in ("a", "b")]
    other = ws.start("hello", {"who": "c"})
    page = browser.get("/runs", params={"playbook": "gated"}).text
    assert "Cancel the 2 running runs this filter matches" in page
    token = csrf_token(browser.cookies[COOKIE])
    wrong = browser.post("/runs/cancel", data={"csrf": token, "playbook": "gated",
                                               "confirm": "3"})
    assert wrong.status_code == 409 and "matches 2 running runs now" in wrong.text
    assert {ws.get_run(r).state for r in runs} == {"running"}
    done = browser.post("/runs/cancel", data={"csrf": token, "playbook": "gated",
                                              "confirm": "2"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/runs?playbook=gated"
    assert {ws.get_run(r).state for r in runs} == {"cancelled"}
    assert ws.get_run(other).state == "running"
    assert {e.actor for e in ws.log() if e.kind == "run.cancelled"} == {
        f"person:{ws.settings.actor}"}


def test_a_failed_run_is_retried_from_its_page_and_in_bulk(browser: TestClient,
                                                          ws: Workspace) -> None:
    failed = [ws.start("broken") for _ in range(2)]
    for run_id in failed:
        drain(ws, run_id, "failed")
    token = csrf_token(browser.cookies[COOKIE])
    assert "Retry from the failed step" in browser.get(f"/runs/{failed[0]}").text
    one = browser.post(f"/runs/{failed[0]}/retry", data={"csrf": token},
                       follow_redirects=False)
    assert one.status_code == 303 and ws.get_run(failed[0]).state == "running"
    drain(ws, failed[0], "failed")
    page = browser.get("/runs", params={"playbook": "broken"}).text
    assert "Retry the 2 failed runs this filter matches" in page
    both = browser.post("/runs/retry", data={"csrf": token, "playbook": "broken",
                                             "confirm": "2"}, follow_redirects=False)
    assert both.status_code == 303
    assert {ws.get_run(r).state for r in failed} == {"running"}
    for run_id in failed:
        drain(ws, run_id, "failed")
