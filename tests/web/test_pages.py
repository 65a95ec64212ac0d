"""The dashboard's pages against the real app, on both backends: each renders for a
signed-in person and asks a stranger to sign in; whatever users, agents or memory wrote is
shown as text, never markup; forms need the session's CSRF token; decisions made through
the forms are logged as the person; and no secret value is on any page."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from support.runs import drain

from soloist.interfaces.api.auth import COOKIE, csrf_token
from soloist.memory.facts import Cause
from soloist.workspace import Workspace

SECRET = "s3cret-value-123"
XSS_OUTPUT = "<script>alert(1)</script>"
XSS_FACT = "<img src=x onerror=alert(1)>"


def csrf(client: TestClient) -> str:
    return csrf_token(client.cookies[COOKIE])


def waiting(ws: Workspace, playbook: str, inputs: dict[str, str]) -> tuple[str, str]:
    """A run stopped at its gate, and the approval that waits."""
    run_id = ws.start(playbook, inputs)
    ws.worker().run(until_idle=True)
    pending = ws.approvals(run_id=run_id)
    assert pending, ws.get_run(run_id)
    return run_id, pending[0].approval.id


def seeded(ws: Workspace) -> dict[str, str]:
    """A run of each kind, a waiting approval, a fact, a second deploy: every page has
    something to show."""
    ws.secrets.set("API_KEY", SECRET, "person:test")
    done = ws.start("hello", {"who": "ada", "key": SECRET})
    drain(ws, done)
    failed = ws.start("broken")
    drain(ws, failed, "failed")
    gated, approval = waiting(ws, "mail", {"who": "bob"})
    ws.put_fact("crm", "ada", "note", XSS_FACT, "seen in a reply")
    return {"done": done, "failed": failed, "gated": gated, "approval": approval}


def pages(ids: dict[str, str]) -> list[str]:
    return ["/", "/runs", "/runs?state=done", f"/runs/{ids['done']}",
            f"/runs/{ids['failed']}", f"/runs/{ids['gated']}", f"/runs/{ids['done']}/live",
            "/approvals", "/approvals/items", "/memory", "/memory?q=ada",
            "/memory/fact?namespace=crm&subject=ada&key=note", "/registry",
            "/registry/playbook/hello", "/measures", "/measures?days=30", "/overrides"]


def test_every_page_renders_for_a_signed_in_person(browser: TestClient,
                                                   ws: Workspace) -> None:
    ids = seeded(ws)
    for path in pages(ids):
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/html"), path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    home = browser.get("/").text
    assert "Send the greeting to bob?" in home and ids["failed"] in home
    run = browser.get(f"/runs/{ids['done']}").text
    assert "<svg" in run and "greet" in run and "run.created" in run


def test_the_timeline_shows_each_step_and_its_attempts(browser: TestClient,
                                                      ws: Workspace) -> None:
    run_id = ws.start("flaky")
    drain(ws, run_id)
    html = browser.get(f"/runs/{run_id}").text
    assert "wobble (2 attempts)" in html and "<rect" in html
    assert "attempt 2" in html and "the first try fails" in html


def test_a_stranger_is_asked_to_sign_in(anonymous: TestClient, ws: Workspace) -> None:
    ids = seeded(ws)
    for path in pages(ids):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert "soloist up" in response.text and "Traceback" not in response.text
    anonymous.cookies.set(COOKIE, "forged")
    assert anonymous.get("/").status_code == 401


def test_what_agents_users_and_memory_wrote_is_text(browser: TestClient,
                                                    ws: Workspace) -> None:
    ids = seeded(ws)
    run = browser.get(f"/runs/{ids['done']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run
    assert XSS_OUTPUT not in run
    for path in ("/memory", "/memory/fact?namespace=crm&subject=ada&key=note",
                 "/memory?q=ada"):
        html = browser.get(path).text
        assert XSS_FACT not in html, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in browser.get("/memory").text
    inbox = browser.get("/approvals").text
    assert "Hello &lt;b&gt;bob&lt;/b&gt;" in inbox and "<b>bob</b>" not in inbox
    failed = browser.get(f"/runs/{ids['failed']}").text
    assert "<b>input</b>" not in failed and "bad &lt;b&gt;input&lt;/b&gt;" in failed


def test_the_inbox_shows_an_email_as_it_will_be_sent(browser: TestClient,
                                                     ws: Workspace) -> None:
    waiting(ws, "mail", {"who": "bob"})
    inbox = browser.get("/approvals").text
    for shown in ("<dt>To</dt><dd>bob@example.com</dd>", "<dt>Cc</dt><dd>boss@example.com</dd>",
                  "Dear bob, hi.", "Why it is gated: Send the greeting to bob?"):
        assert shown in inbox


def test_a_form_without_its_csrf_token_is_refused(browser: TestClient,
                                                  ws: Workspace) -> None:
    run_id, approval = waiting(ws, "gated", {"who": "ada"})
    for data in ({}, {"csrf": "wrong"}):
        refused = browser.post(f"/approvals/{approval}/approve", data=data,
                               follow_redirects=False)
        assert refused.status_code == 403 and "CSRF" in refused.text
    assert ws.approvals(run_id=run_id), "the approval still waits"
    assert browser.post(f"/runs/{run_id}/cancel", data={}).status_code == 403
    assert ws.get_run(run_id).state == "running"


def test_decisions_through_the_forms_are_the_persons(browser: TestClient,
                                                     ws: Workspace) -> None:
    first, approve_id = waiting(ws, "gated", {"who": "ada"})
    second, reject_id = waiting(ws, "gated", {"who": "bob"})
    token = csrf(browser)
    approved = browser.post(f"/approvals/{approve_id}/approve", data={"csrf": token},
                            follow_redirects=False)
    assert approved.status_code == 303 and approved.headers["location"].startswith(
        "/approvals")
    no_reason = browser.post(f"/approvals/{reject_id}/reject", data={"csrf": token})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    rejected = browser.post(f"/approvals/{reject_id}/reject",
                            data={"csrf": token, "reason": "not <now>"},
                            follow_redirects=False)
    assert rejected.status_code == 303
    drain(ws, first)
    drain(ws, second, "failed")
    decided = {a.id: a for run in (first, second) for a in ws.show(run).approvals}
    assert decided[approve_id].decision == "approved"
    assert decided[reject_id].decision == "rejected"
    assert decided[reject_id].note == "not <now>"
    assert {decided[i].decided_by for i in (approve_id, reject_id)} == {"person:operator"}
    events = [e for run in (first, second) for e in ws.log(run_id=run)
              if e.kind == "approval.decided"]
    assert events and {e.actor for e in events} == {"person:operator"}
    again = browser.post(f"/approvals/{approve_id}/approve", data={"csrf": token})
    assert again.status_code == 409 and "Traceback" not in again.text


def test_batch_approve_and_retry_with_guidance(browser: TestClient, ws: Workspace) -> None:
    runs_and_ids = [waiting(ws, "gated", {"who": w}) for w in ("a", "b", "c")]
    token = csrf(browser)
    batch = browser.post("/approvals/batch", follow_redirects=False,
                         data={"csrf": token, "ids": [i for _, i in runs_and_ids[:2]]})
    assert batch.status_code == 303
    retried = browser.post(f"/approvals/{runs_and_ids[2][1]}/retry", follow_redirects=False,
                           data={"csrf": token, "guidance": "say it kindly"})
    assert retried.status_code == 303
    for run_id, _ in runs_and_ids[:2]:
        drain(ws, run_id)
    assert next(a.decision for a in ws.show(runs_and_ids[2][0]).approvals) == "retry"


def test_signing_out_through_the_nav_form(browser: TestClient) -> None:
    assert 'action="/signout"' in browser.get("/").text
    assert browser.post("/signout", data={}).status_code == 403
    session = browser.cookies[COOKIE]
    gone = browser.post("/signout", data={"csrf": csrf(browser)}, follow_redirects=False)
    assert gone.status_code == 303
    assert browser.get("/").status_code == 401
    browser.cookies.set(COOKIE, session)
    assert browser.get("/").status_code == 401, "the session itself is over"


def test_a_missing_scope_is_a_403_page(anonymous: TestClient, ws: Workspace) -> None:
    ws.deploy()
    issued = ws.access.create_token("looker", ["read"], "person:test")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert anonymous.get("/registry/playbook/hello", headers=headers).status_code == 200
    refused = anonymous.post("/registry/playbook/hello/rollback", data={"version": "1"},
                             headers=headers)
    assert refused.status_code == 403 and "looker" in refused.text
    assert refused.headers["content-type"].startswith("text/html")


def test_runs_filters_live_in_the_url_and_pages_follow(browser: TestClient,
                                                       ws: Workspace) -> None:
    done = [ws.start("hello", {"who": f"n{i}"}) for i in range(3)]
    for run_id in done:
        drain(ws, run_id)
    failed = ws.start("broken")
    drain(ws, failed, "failed")
    html = browser.get("/runs?state=failed&playbook=&q=").text
    assert failed in html and not any(r in html for r in done)
    assert '<option selected>failed</option>' in html
    assert "/runs/rows?state=failed&amp;seen=" in html
    def day(run_id: str) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(ws.get_run(run_id).created_at))

    first, today = day(done[0]), day(failed)
    dated = browser.get(f"/runs?since={first}&until={today}").text
    assert all(r in dated for r in [*done, failed])
    assert failed not in browser.get(f"/runs?until={today}T00:00:00").text
    assert "until" in browser.get("/runs?until=yesterday").text
    found = browser.get("/runs?q=n1").text
    assert done[1] in found and done[0] not in found
    bad = browser.get("/runs?version=x")
    assert bad.status_code == 422 and "version" in bad.text
    rows = re.search(r'hx-get="([^"]+)"', html)
    assert rows is not None
    assert browser.get(rows.group(1).replace("&amp;", "&")).status_code == 204


def test_no_secret_value_on_any_page(browser: TestClient, ws: Workspace) -> None:
    ids = seeded(ws)
    for path in pages(ids):
        assert SECRET not in browser.get(path).text, path


def test_document_versions_and_definition_diffs_are_escaped(browser: TestClient,
                                                           ws: Workspace) -> None:
    ws.documents.add("notes", "plan", "first line\n<b>bold</b>\n", Cause("person:test",
                                                                       "draft"))
    ws.documents.add("notes", "plan", "first line\n<i>changed</i>\n",
                     Cause("person:test", "edit"))
    html = browser.get("/memory/document?namespace=notes&key=plan").text
    assert "-&lt;b&gt;bold&lt;/b&gt;" in html and "+&lt;i&gt;changed&lt;/i&gt;" in html
    assert "<b>bold</b>" not in html and "<i>changed</i>" not in html
    older = browser.get("/memory/document?namespace=notes&key=plan&from=1&to=1").text
    assert "No difference." in older
    assert browser.get("/memory/document?namespace=notes&key=plan&from=7").status_code == 404
    playbook = ws.root / "playbooks" / "hello.yaml"
    playbook.write_text(playbook.read_text().replace("tasks:shout", "tasks:boom"))
    ws.deploy()
    diff = browser.get("/registry/playbook/hello").text
    assert "tasks:boom" in diff and "v1" in diff and "Roll back" in diff
    rolled = browser.post("/registry/playbook/hello/rollback", follow_redirects=False,
                          data={"csrf": csrf(browser), "version": "1"})
    assert rolled.status_code == 303
    latest = ws.history("playbook", "hello")
    assert len(latest) == 3 and latest[-1].deployed_by == "person:operator"


def test_unknown_things_are_404_pages(browser: TestClient) -> None:
    for path in ("/runs/r-nope", "/runs/r-nope/live", "/registry/playbook/nope",
                 "/memory/fact?namespace=a&subject=b&key=c",
                 "/memory/document?namespace=a&key=b"):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
    bad = browser.get("/registry/widget/x")
    assert bad.status_code == 422 and "Traceback" not in bad.text


def test_the_live_parts_are_sent_only_when_they_change(browser: TestClient,
                                                       ws: Workspace) -> None:
    run_id, approval = waiting(ws, "gated", {"who": "ada"})
    page = browser.get(f"/runs/{run_id}").text
    live = re.search(r'hx-get="(/runs/[^"]+/live\?seen=[^"]+)"', page)
    assert live is not None, "a running run's page refreshes itself"
    assert browser.get(live.group(1)).status_code == 204
    inbox = re.search(r'hx-get="(/approvals/items\?seen=[^"]+)"',
                      browser.get("/approvals").text)
    assert inbox is not None and browser.get(inbox.group(1)).status_code == 204
    ws.approve(approval, None, "person:elsewhere")
    drain(ws, run_id)
    assert "Nothing waits for you." in browser.get(inbox.group(1)).text
    moved = browser.get(live.group(1))
    assert moved.status_code == 200 and ">done<" in moved.text
    assert "hx-trigger" not in moved.text, "an ended run stops asking"


def test_long_lists_come_a_page_at_a_time(browser: TestClient, ws: Workspace,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from soloist.interfaces.web import run, runs

    monkeypatch.setattr(run, "LOG_PAGE", 3)
    monkeypatch.setattr(runs, "PAGE", 2)
    started = [ws.start("hello", {"who": f"n{i}"}) for i in range(3)]
    for run_id in started:
        drain(ws, run_id)
    first = browser.get(f"/runs/{started[0]}").text
    later = re.search(rf'href="(/runs/{started[0]}\?after=(\d+))#log"', first)
    assert later is not None
    events = ws.log(run_id=started[0])
    assert len(events) > 3 and int(later.group(2)) == events[2].seq
    second = browser.get(later.group(1)).text
    assert f"<td>{events[3].seq}</td>" in second and f"<td>{events[0].seq}</td>" not in second
    listing = browser.get("/runs?playbook=hello").text
    assert started[2] in listing and started[1] in listing and started[0] not in listing
    older = re.search(r'href="/runs\?([^"]+)" rel="next"', listing)
    assert older is not None and "playbook=hello" in older.group(1)
    rest = browser.get("/runs?" + older.group(1).replace("&amp;", "&")).text
    assert started[0] in rest and started[2] not in rest


def test_the_memory_browser_shows_what_a_version_was_drawn_from(browser: TestClient,
                                                                ws: Workspace) -> None:
    email = {"kind": "email", "message_id": "<b>a@b.example</b>", "event": 12}
    ws.write_document("projects/acme", "brief", "Budget: 12k.", "from the answers",
                      sources=[email])
    ws.put_fact("projects/acme", "acme", "budget", 12000, "from the answers",
                sources=[email])
    for path in ("/memory/document?namespace=projects/acme&key=brief",
                 "/memory/fact?namespace=projects/acme&subject=acme&key=budget"):
        html = browser.get(path).text
        assert 'class="sources"' in html and "message_id" in html, path
        assert "&lt;b&gt;a@b.example&lt;/b&gt;" in html and "<b>a@b" not in html, path
