"""The dashboard in a real browser (Debian's chromium driven by Playwright), against the
app served by uvicorn on 127.0.0.1 with a worker running beside it: sign in through the
login link, see a run that stops at its gate arrive in the inbox without reloading,
approve it with the keyboard, watch the run finish in another tab, edit an email's wording
at its gate and approve it as edited, find the fact a run wrote with its history, and keep
a runs filter through a reload.

Each page's screenshot is saved in the test's folder (and, when SOLOIST_SCREENSHOTS_TO
names a folder, copied there: that is how docs/screenshots/ was made)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.web import Web
from support.workspaces import write_workspace

from soloist.workspace import Workspace

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("SOLOIST_REQUIRE_BROWSER") == "1"

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed (pip install 'playwright>=1.45,<2')",
                allow_module_level=True)
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    if REQUIRED:
        pytest.fail(f"SOLOIST_REQUIRE_BROWSER=1 but {CHROMIUM} is missing "
                    "(apt-get install chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

PLAYBOOKS = {
    "remember": """
name: remember
inputs: {type: object, properties: {who: {type: string}}, required: [who]}
steps:
  - id: note
    tool: memory.put
    args: {namespace: crm, subject: "{{ inputs.who }}", key: greeted, value: "yes",
           reason: "the remember playbook greeted them"}
    gate: {message: "Remember that {{ inputs.who }} was greeted?"}
""",
    "greet": """
name: greet
inputs: {type: object, properties: {who: {type: string}}, required: [who]}
steps:
  - id: email
    tool: mail.send
    args: {to: "{{ inputs.who }}@example.com", subject: "Hello {{ inputs.who }}",
           text: "Dear {{ inputs.who }}, hi."}
    gate: {message: "Send the greeting to {{ inputs.who }}?"}
""",
}
TASKS = '''
from soloist import tool


@tool("mail.send", effect="write")
def mail_send(to: str, subject: str, text: str) -> dict:
    """Send an email (here: only say what was sent)."""
    return {"sent_to": to, "text": text}
'''
#: how long the browser waits for what the page shows to change by itself, in ms
LIVE = 20_000


class Served(Web):
    """The app on a free port of 127.0.0.1 and a worker, each in a thread."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws)
        self.worker = ws.worker(concurrency=2)
        self.worker_thread = threading.Thread(target=self.worker.run, daemon=True)

    def __enter__(self) -> Served:
        super().__enter__()
        self.worker_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.worker.stop()
        self.worker_thread.join(30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Workspace, Served]]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS,
                           toml='[tools]\nmodules = ["tasks"]\n')
    with Workspace(root, database_url=f"sqlite:///{tmp_path}/state.db") as ws:
        ws.deploy()
        with Served(ws) as server:
            yield ws, server


def api(server: Served, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.url + path, json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def test_the_operators_day(served: tuple[Workspace, Served], tmp_path: Path) -> None:
    ws, server = served
    runner = ws.access.create_token("starter", ["run"], "person:test").secret
    approver = ws.access.create_token("other-tab", ["approve"], "person:test").secret
    shots = tmp_path / "screenshots"
    shots.mkdir()

    problems: list[str] = []  # what the browser's console reported as errors

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 760})
            context.on("page", lambda page: page.on(
                "console", lambda m: problems.append(m.text) if m.type == "error" else None))
            inbox = context.new_page()
            inbox.goto(f"{server.url}/login?token={ws.access.login_link('person:t').secret}")
            expect(inbox.locator("h1")).to_have_text("What needs me")
            inbox.goto(f"{server.url}/approvals")
            expect(inbox.locator("#inbox-empty")).to_be_visible()

            # A run started elsewhere arrives in the open inbox by itself.
            run_id = api(server, runner, "/api/v1/runs",
                         {"playbook": "remember", "inputs": {"who": "ada"}})["run_id"]
            item = inbox.locator("#inbox .item")
            expect(item).to_have_count(1, timeout=LIVE)
            expect(item).to_contain_text("Remember that ada was greeted?")
            expect(item).to_contain_text("memory.put")
            home = context.new_page()
            home.goto(server.url + "/")
            expect(home.locator("main")).to_contain_text("Remember that ada was greeted?")
            shot(home, "home")
            home.close()

            # The run's page, open in another tab, follows the run as it moves.
            run_tab = context.new_page()
            run_tab.goto(f"{server.url}/runs/{run_id}")
            expect(run_tab.locator("#run-state")).to_have_text("running")
            inbox.keyboard.press("j")
            expect(item).to_have_class("item selected")
            inbox.keyboard.press("r")
            expect(item.locator("input.reason")).to_be_focused()
            inbox.keyboard.type("a")  # typed into the field: not a shortcut
            expect(item.locator("input.reason")).to_have_value("a")
            inbox.locator("h1").click()
            inbox.keyboard.press("a")
            inbox.wait_for_url("**/approvals?done=approved")
            expect(run_tab.locator("#run-state")).to_have_text("done", timeout=LIVE)
            expect(run_tab.locator("svg.timeline rect")).to_have_count(1)
            shot(run_tab, "run")

            # A decision made elsewhere (here: the API) leaves the inbox by itself.
            second = api(server, runner, "/api/v1/runs",
                         {"playbook": "remember", "inputs": {"who": "bob"}})["run_id"]
            expect(item).to_have_count(1, timeout=LIVE)
            waiting = ws.approvals(run_id=second)[0].approval.id
            api(server, approver, f"/api/v1/approvals/{waiting}/approve", {})
            expect(inbox.locator("#inbox-empty")).to_be_visible(timeout=LIVE)

            # The email's wording edited at its gate, then approved as edited.
            greeting = api(server, runner, "/api/v1/runs",
                           {"playbook": "greet", "inputs": {"who": "cleo"}})["run_id"]
            expect(item).to_have_count(1, timeout=LIVE)
            expect(item).to_contain_text("Hello cleo")
            shot(inbox, "approvals")  # the email as it will be sent
            inbox.locator("h1").click()
            inbox.keyboard.press("j")
            inbox.keyboard.press("e")
            expect(item.locator("input.edit-subject")).to_be_focused()
            item.locator("textarea.edit-text").fill("Dear Cleo, thank you for Tuesday.")
            item.locator("input.edit-note").fill("warmer")
            item.get_by_role("button", name="Approve as edited").click()
            inbox.wait_for_url("**/approvals?done=approved")
            ws.wait(greeting, timeout=30)
            [sent] = ws.show(greeting).intents
            assert sent.args["text"] == "Dear Cleo, thank you for Tuesday."
            [override] = [e for e in ws.log(run_id=greeting) if e.kind == "approval.override"]
            assert override.data["before"]["text"] == "Dear cleo, hi."

            # The fact the run wrote, with who wrote it, in which run, and why.
            memory = context.new_page()
            memory.goto(f"{server.url}/memory")
            expect(memory.locator("#facts")).to_contain_text("crm/ada/greeted")
            shot(memory, "memory")
            memory.get_by_role("link", name="crm/ada/greeted").click()
            history = memory.locator("#history")
            expect(history).to_contain_text(run_id)
            expect(history).to_contain_text("the remember playbook greeted them")
            shot(memory, "fact")

            # A runs filter is the URL: it survives a reload.
            runs = context.new_page()
            runs.goto(f"{server.url}/runs")
            runs.select_option("select[name=state]", "done")
            runs.fill("input[name=q]", "ada")
            runs.get_by_role("button", name="Filter").click()
            runs.wait_for_url("**/runs?state=done*q=ada*")
            runs.reload()
            expect(runs.locator("select[name=state]")).to_have_value("done")
            expect(runs.locator("input[name=q]")).to_have_value("ada")
            expect(runs.locator("#runs")).to_contain_text(run_id)
            expect(runs.locator("#runs")).not_to_contain_text(second)
            shot(runs, "runs")

            for path, name in (("/registry", "registry"),
                               ("/registry/playbook/remember", "definition"),
                               ("/measures", "metrics")):
                runs.goto(server.url + path)
                expect(runs.locator("h1")).to_be_visible()
                shot(runs, name)
        finally:
            browser.close()
    assert not problems, problems  # no script error, nothing the page policy blocked

    target = os.environ.get("SOLOIST_SCREENSHOTS_TO")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for png in shots.iterdir():
            shutil.copy(png, Path(target) / png.name)
