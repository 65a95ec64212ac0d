"""The freelancer studio in a real browser: Mara signs in, sees the three outreach drafts
waiting (one with its failed verification and the reason), lets the failed one through
to its send gate, edits it there and approves it as edited, approves the others, then
finds the override, the project brief with the email it came from, a delivery run's
timeline and the measures. The rest of the story runs as the demo runs it.

Each page's screenshot is saved in the test's folder (and, when SOLOIST_SCREENSHOTS_TO
names a folder, copied there: that is how docs/screenshots/freelancer-*.png were made)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.studio import studio
from support.web import Web

from soloist.demo.freelancer import FreelancerDemo
from soloist.interfaces.cli.rows import read_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("SOLOIST_REQUIRE_BROWSER") == "1"
LIVE = 20_000  # ms the browser waits for the page to change by itself

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    if REQUIRED:
        pytest.fail(f"SOLOIST_REQUIRE_BROWSER=1 but {CHROMIUM} is missing", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FreelancerDemo, Web]]:
    with studio(tmp_path / "studio") as demo, Web(demo.ws) as web:
        yield demo, web


def test_maras_week_in_the_dashboard(served: tuple[FreelancerDemo, Web],
                                     tmp_path: Path) -> None:
    demo, web = served
    ws = demo.ws
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []

    def shot(page: Page, name: str, *, whole: bool = False) -> None:
        page.screenshot(path=str(shots / f"freelancer-{name}.png"), full_page=whole)

    rows = read_rows(ws.root / "leads.csv", ws.registry.latest_playbook("outreach").inputs)
    for (_, inputs), run_id in zip(rows, ws.start_many("outreach", rows), strict=True):
        first = str(inputs["name"]).split()[0].lower()
        demo.leads.runs[first], demo.leads.emails[first] = run_id, inputs["email"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            context.on("page", lambda page: page.on(
                "console", lambda m: problems.append(m.text) if m.type == "error" else None))
            inbox = context.new_page()
            inbox.goto(f"{web.url}/login?token={ws.access.login_link('person:mara').secret}")
            inbox.goto(f"{web.url}/approvals")
            items = inbox.locator("#inbox .item")
            expect(items).to_have_count(3, timeout=LIVE)
            cleo = items.filter(has_text="no portfolio document backs")
            expect(cleo).to_contain_text("I have designed banking apps for ten years.")
            expect(items.filter(has_text="Send this first email to Ada Quinn")).to_contain_text(
                "I redesigned Lumen's checkout")
            shot(inbox, "approvals", whole=True)

            # The failed verification is let through to its send gate, and fixed there.
            cleo.get_by_role("button", name="Approve").click()
            inbox.wait_for_url("**/approvals?done=approved")
            send = inbox.locator("#inbox .item").filter(
                has_text="Send this first email to Cleo Park")
            expect(send).to_have_count(1, timeout=LIVE)
            send.locator("summary", has_text="Edit then approve").click()
            body = send.locator("textarea.edit-text")
            body.fill(body.input_value().replace(
                "I have designed banking apps for ten years.\n\n", ""))
            send.locator("input.edit-note").fill("no portfolio document backs the claim")
            shot(inbox, "edit")
            send.get_by_role("button", name="Approve as edited").click()
            inbox.wait_for_url("**/approvals?done=approved")
            for name in ("Ada Quinn", "Ben Ortiz"):
                item = inbox.locator("#inbox .item").filter(has_text=f"email to {name}")
                item.get_by_role("button", name="Approve").click()
                inbox.wait_for_url("**/approvals?done=approved")
            for run_id in demo.leads.runs.values():
                demo.state(run_id, "contacted", "done")
            [to_cleo] = demo.sent_to("cleo@brightpath.test")
            assert "banking apps" not in to_cleo.text

            page = context.new_page()
            page.goto(f"{web.url}/overrides")
            expect(page.locator("main")).to_contain_text("no portfolio document backs")
            expect(page.locator("main")).to_contain_text("banking apps")
            shot(page, "overrides")

            # The rest of the week, as the demo plays it.
            demo.replies()
            demo.qualification()
            demo.compounding()
            demo.delivery()

            page.goto(f"{web.url}/memory/document?namespace=projects/northwind-outfitters"
                      "&key=brief")
            expect(page.locator("main")).to_contain_text("Budget: 12000.0 EUR")
            expect(page.locator("main")).to_contain_text(demo.leads.answers["ada"])
            shot(page, "brief")
            deliver = next(r.id for r in ws.runs(playbook="deliver")
                           if "northwind" in r.inputs["brief"]["client"]["slug"])
            page.goto(f"{web.url}/runs/{deliver}")
            expect(page.locator("main")).to_contain_text("m1_invoice")
            expect(page.locator("main")).to_contain_text("waiting")
            shot(page, "delivery")
            page.goto(f"{web.url}/measures")
            expect(page.locator("h1")).to_be_visible()
            expect(page.locator("main")).to_contain_text("qualify")
            shot(page, "measures")
        finally:
            browser.close()
    assert not problems, problems

    target = os.environ.get("SOLOIST_SCREENSHOTS_TO")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for png in shots.iterdir():
            shutil.copy(png, Path(target) / png.name)
