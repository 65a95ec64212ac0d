"""``make demo``: the freelancer studio end to end, on real local servers, narrated.

Everything here goes through the same ``Workspace`` methods the CLI, the dashboard and the
API call (start, approve with edits, deploy, the clock of a rehearsal); the outside world
is played by the demo itself, as real messages into the IMAP server. What the demo shows
at the end is counted in the servers: emails delivered by Message-ID, calendar events by
UID, invoices by their key, commits by their ``Soloist-Intent`` trailer.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from soloist.demo import report
from soloist.demo.servers import LocalServers
from soloist.demo.workspace import (
    STUDIO,
    check_folder,
    servers_for,
    store_secrets,
    write_workspace,
)
from soloist.errors import InvalidState
from soloist.integrations.mail.compose import reply_subject
from soloist.interfaces.cli import render
from soloist.workspace import Workspace

OPERATOR = "person:mara"
PARIS = ZoneInfo("Europe/Paris")
DAY = 86400.0


@dataclass
class Leads:
    """The demo's three leads: their outreach runs, by first name."""

    runs: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)  # the Message-ID of each's answers


class FreelancerDemo:
    def __init__(self, root: Path, servers: LocalServers, ws: Workspace,
                 say: Callable[..., None]) -> None:
        self.root, self.servers, self.ws, self.say = root, servers, ws, say
        self.leads = Leads()

    # -- helpers ---------------------------------------------------------------------------

    def until(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Wait until ``check()`` gives something true; the workers and the scheduler run
        in threads of this process."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.05)
        raise InvalidState(f"the demo waited {timeout:g}s for {what}; `soloist show` and "
                           f"`soloist log -w {self.root}` say where it stopped")

    def gate(self, run_id: str, step: str) -> Any:
        return self.until(f"step {step} of run {run_id} to wait for a person", lambda: next(
            (p for p in self.ws.approvals(run_id=run_id) if p.approval.step_id == step), None))

    def step(self, run_id: str, step: str) -> Any:
        return next(s for s in self.ws.show(run_id).steps if s.step_id == step)

    def state(self, run_id: str, step: str, *states: str) -> Any:
        return self.until(f"step {step} of run {run_id} to be {' or '.join(states)}",
                          lambda: (s := self.step(run_id, step)).state in states and s)

    def run_of(self, playbook: str, match: Callable[[Any], bool]) -> str:
        def find() -> str | None:
            return next((r.id for r in self.ws.runs(playbook=playbook, limit=50)
                         if match(r)), None)
        return str(self.until(f"a run of {playbook}", find))

    def approve(self, pending: Any, note: str | None = None,
                edits: dict[int, dict[str, Any]] | None = None) -> None:
        self.ws.approve(pending.approval.id, note, actor=OPERATOR, edits=edits)

    def email_from(self, lead: str, text: str, subject: str, replying_to: str) -> str:
        """A real message from a lead into the studio's INBOX, answering the message
        ``replying_to`` (its Message-ID) of that ``subject``."""
        return self.arrive(f"{lead.title()} <{self.leads.emails[lead]}>", text,
                           reply_subject(subject), in_reply_to=replying_to,
                           references=[replying_to])

    def arrive(self, sender: str, text: str, subject: str, *,
               in_reply_to: str | None = None, references: Sequence[str] = ()) -> str:
        """A real message from the outside world into the studio's INBOX, with exactly the
        threading headers given, then the mailbox polled as a worker would; its
        Message-ID."""
        message = EmailMessage(policy=email.policy.SMTP)
        message["From"] = sender
        message["To"] = STUDIO
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(localtime=True)
        message_id = f"<{secrets.token_hex(8)}@{sender.rsplit('@', 1)[1].rstrip('>')}>"
        message["Message-ID"] = message_id
        if in_reply_to:
            message["In-Reply-To"] = in_reply_to
        if references:
            message["References"] = " ".join(references)
        message.set_content(text)
        self.servers.deliver_to_inbox(message.as_bytes())
        self.ws.sync_connector("mail")
        return message_id

    def sent_to(self, address: str) -> list[Any]:
        return [m for m in self.servers.delivered_messages() if address in m.rcpt_tos]

    def advance(self, seconds: float, why: str) -> None:
        reading = self.ws.clock.advance(seconds, OPERATOR)
        shown = dt.datetime.fromtimestamp(reading.now, PARIS).strftime("%a %d %b %H:%M")
        self.say(f"   the workspace's clock moves {seconds / DAY:.1f} days ({why}): "
                 f"now {shown} for the playbooks; the system clock is untouched")

    # -- the acts --------------------------------------------------------------------------

    def outreach(self) -> None:
        from soloist.interfaces.cli.rows import read_rows

        self.say("1. Three leads are imported from leads.csv (soloist run outreach --each)")
        rows = read_rows(self.root / "leads.csv",
                         self.ws.registry.latest_playbook("outreach").inputs)
        ids = self.ws.start_many("outreach", rows, actor=OPERATOR)
        for (_, inputs), run_id in zip(rows, ids, strict=True):
            first = str(inputs["name"]).split()[0].lower()
            self.leads.runs[first], self.leads.emails[first] = run_id, inputs["email"]
        for name, run_id in self.leads.runs.items():
            done = self.state(run_id, "verify", "done", "awaiting_approval")
            draft = self.step(run_id, "draft").output
            self.say(f"   {name.title()}: \"{draft['subject']}\" "
                     f"({report.written_by(self.ws, run_id, 'draft')})")
            if done.state == "awaiting_approval":
                self.say(f"     verification FAILED, waiting for Mara: {done.error}")
        cleo = self.leads.runs["cleo"]
        self.approve(self.gate(cleo, "verify"), "I will fix the sentence before it goes")
        pending = self.gate(cleo, "send")
        before = pending.intents[0].args
        # The sentence the verifier quoted, however the draft worded it.
        kept = [p for p in before["text"].split("\n\n") if "banking" not in p.lower()]
        after = {**before, "text": "\n\n".join(kept)}
        self.approve(pending, "no portfolio document backs the banking claim",
                     edits={0: after})
        self.say("   Mara edits Cleo's email at its gate (the unbacked sentence goes), with "
                 "her reason: kept as an override, shown to later drafts")
        for name in ("ada", "ben"):
            self.approve(self.gate(self.leads.runs[name], "send"), "reads well")
        for run_id in self.leads.runs.values():
            self.state(run_id, "contacted", "done")
        self.say(f"   three first emails sent ({len(self.servers.delivered())} delivered "
                 "over SMTP); each run now waits 3 days for a reply")

    def replies(self) -> None:
        self.say("2. Ada replies \"interested\", Ben asks to opt out, Cleo stays silent")
        for name, text in (
                ("ada", "Hi Mara,\n\nThanks for reaching out. Yes, we are interested: our "
                        "checkout needs work. Let's talk!\n\nAda"),
                ("ben", "Hello,\n\nNo thanks, please remove me from your list.\n\nBen")):
            first = self.sent_to(self.leads.emails[name])[0]
            self.email_from(name, text, first.subject, str(first.message_id))
        for name in ("ada", "ben"):
            run_id = self.leads.runs[name]
            self.until(f"{name}'s outreach to stop", lambda r=run_id: (  # type: ignore[misc]
                self.ws.get_run(r).state == "done"))
        self.say("   both outreach runs stopped on the reply (run.stopped): no follow-up "
                 "will go to them")
        ada = self.run_of("qualify", lambda r: r.inputs["lead"]["email"] ==
                          self.leads.emails["ada"])
        self.until("Ben's opt-out in memory", lambda: report.lead_stage(
            self.ws, self.leads.emails["ben"]) == "opted_out")
        self.say("   triage: Ada is interested (a qualify run starts); Ben opted out "
                 "(leads/fernhill-clinics stage=opted_out, drawn from his email)")
        questions = self.gate(ada, "ask")
        self.say(f"   gate: {questions.approval.message}")
        self.approve(questions)
        self.state(ada, "answers", "waiting")
        self.leads.runs["ada-qualify"] = ada
        self.advance(3 * DAY + 60, "three days pass")
        cleo = self.leads.runs["cleo"]
        nudge = self.gate(cleo, "nudge_1")
        self.approve(nudge, "fine")
        self.state(cleo, "wait_2", "waiting")
        self.say("   Cleo's +3-day follow-up was drafted, checked and approved; it went in "
                 "the same thread")

    def qualification(self) -> None:
        self.say("3. Ada answers the discovery questions; the brief goes to memory")
        run_id = self.leads.runs["ada-qualify"]
        asked = self.sent_to(self.leads.emails["ada"])[-1]
        self.leads.answers["ada"] = self.email_from("ada", ANSWERS_ADA, asked.subject,
                                                    str(asked.message_id))
        self.state(run_id, "record", "done")
        brief = self.ws.document("projects/northwind-outfitters", "brief")
        sources = (brief.metadata or {}).get("sources") or []
        self.say(f"   projects/northwind-outfitters/brief v{brief.version}, drawn from "
                 f"{', '.join(str(s.get('message_id')) for s in sources)}")
        invite = self.gate(run_id, "invite")
        when = invite.intents[1].args["start"]
        self.say(f"   two free slots from the calendar's free/busy; the first ({when}) is "
                 "held")
        self.approve(invite, "both slots work for me")
        self.gate(run_id, "accept")
        self.say("   Ada's brief waits for Mara's acceptance (the run keeps discovery "
                 "script v1)")

    def compounding(self) -> None:
        self.say("4. Mara edits the discovery script and deploys; the next qualification "
                 "uses it")
        script = self.root / "memory" / "playbooks" / "discovery-script.md"
        script.write_text(script.read_text().rstrip("\n") + "\n6. Who decides, and who "
                          "else should be on our first call?\n")
        deployed = self.ws.deploy(OPERATOR)
        shown = ", ".join(f"{kind} {name} v{version}" for kind, name, version
                          in deployed.deployed) or "nothing"
        self.say(f"   deployed: {shown}")
        cleo = self.leads.runs["cleo"]
        nudge = self.sent_to(self.leads.emails["cleo"])[-1]
        self.email_from("cleo", "Hi Mara, sorry for the silence. I'm interested, "
                        "tell me more!\nCleo", nudge.subject, str(nudge.message_id))
        self.until("Cleo's outreach to stop", lambda: self.ws.get_run(cleo).state == "done")
        run_id = self.run_of("qualify", lambda r: r.inputs["lead"]["email"] ==
                             self.leads.emails["cleo"])
        questions = self.gate(run_id, "ask")
        self.say(f"   gate: {questions.approval.message}")
        self.approve(questions)
        self.state(run_id, "answers", "waiting")
        asked = self.sent_to(self.leads.emails["cleo"])[-1]
        self.leads.answers["cleo"] = self.email_from("cleo", ANSWERS_CLEO, asked.subject,
                                                     str(asked.message_id))
        self.approve(self.gate(run_id, "invite"))
        self.approve(self.gate(run_id, "accept"), "a good fit")
        self.until("Cleo's qualification to end", lambda: self.ws.get_run(run_id).state ==
                   "done")
        ada = self.leads.runs["ada-qualify"]
        self.say(f"   pins: Ada's run reads script v{report.pinned(self.ws, ada)}, "
                 f"Cleo's v{report.pinned(self.ws, run_id)}")
        self.approve(self.gate(ada, "accept"), "let's do it")
        self.until("Ada's qualification to end", lambda: self.ws.get_run(ada).state == "done")

    def delivery(self) -> None:
        self.say("5. Delivery for Northwind: branch, milestones, milestone 1, its invoice")
        run_id = self.run_of("deliver", lambda r: r.inputs["brief"]["client"]["slug"] ==
                             "northwind-outfitters")
        self.state(run_id, "m1_ready", "waiting")
        plan = self.step(run_id, "plan").output
        self.say(f"   {plan['count']} milestones in MILESTONES.md on {plan['branch']}, and "
                 "in the calendar")
        self.ws.start("milestone-done", {
            "project": "northwind-outfitters", "milestone": 1,
            "files": {"northwind-outfitters/m1/checkout-audit.md": CHECKOUT_AUDIT}},
            actor=OPERATOR)
        invoice = self.gate(run_id, "m1_invoice")
        self.say(f"   milestone 1 committed and pushed; gate: {invoice.approval.message}")
        self.approve(invoice, "matches the brief")
        self.state(run_id, "m1_send", "done")
        self.say("   the invoice was created, finalized and sent by the billing server")
        monday = _next_monday(self.ws.clock.read().now)
        self.advance(monday - self.ws.clock.read().now, "to Monday 09:05, Paris")
        status = self.run_of("status", lambda r: True)
        self.approve(self.gate(status, "send"), "good")
        self.until("the status emails", lambda: self.ws.get_run(status).state == "done")
        review = self.run_of("weekly-review", lambda r: True)
        self.until("the weekly review", lambda: self.ws.get_run(review).state == "done")
        self.say("   Monday: the weekly status emails went (cron, gated), and the weekly "
                 "review is in memory (reviews/)")


def _next_monday(now: float) -> float:
    """Monday 09:05 in Paris after ``now``: past the status and review cron triggers."""
    local = dt.datetime.fromtimestamp(now, PARIS)
    days = (7 - local.weekday()) % 7 or 7
    target = (local + dt.timedelta(days=days)).replace(hour=9, minute=5, second=0,
                                                       microsecond=0)
    return target.timestamp()


ANSWERS_ADA = """\
Hi Mara, here you go:

1. Too many customers drop off at checkout, mostly on mobile.
2. The checkout flow, the cart and the order confirmation emails.
3. About 12000 EUR.
4. 2027-03-31
5. Shopify Plus; our brand guide is fixed.

Ada
"""

ANSWERS_CLEO = """\
1. New teams do not find their way to a first signed contract.
2. Onboarding and the first document wizard.
3. 8000 EUR.
4. 2027-02-28
5. A small team of two developers.
6. I decide, with our CTO on the first call.
"""

CHECKOUT_AUDIT = """\
# Northwind checkout audit (milestone 1)

- 7 usability sessions, 4 on mobile
- The address form loses input on errors: fix first
- A one-page checkout prototype, tested with 5 customers
"""


@contextmanager
def running(ws: Workspace) -> Iterator[None]:
    """A worker and the scheduler in threads of this process, as `soloist up` runs them."""
    worker = ws.worker(concurrency=6)
    scheduler = ws.scheduler(worker.id)
    scheduler.interval = 0.05
    threads = [threading.Thread(target=worker.run, daemon=True, name="demo-worker"),
               threading.Thread(target=scheduler.run, daemon=True, name="demo-scheduler")]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        worker.stop()
        scheduler.stop()
        for thread in threads:
            thread.join(timeout=30)


def prepare(ws: Workspace, servers: LocalServers) -> None:
    """The credentials stored, everything deployed, and the mailbox read from now on (as
    the first poll of `soloist up` would)."""
    store_secrets(ws, servers, OPERATOR)
    ws.deploy(OPERATOR)
    ws.sync_connector("mail")


def scenario(demo: FreelancerDemo,
             progress: Callable[[str], AbstractContextManager[Any]] | None = None) -> None:
    """The five acts, in order (the workers must be running: see :func:`running`);
    ``progress`` wraps each, e.g. in a spinner."""
    for name, act in (("outreach", demo.outreach), ("replies", demo.replies),
                      ("qualification", demo.qualification),
                      ("a better discovery script", demo.compounding),
                      ("delivery", demo.delivery)):
        with progress(name) if progress is not None else nullcontext():
            act()


def run(root: Path, *, keep_running: bool = False) -> dict[str, Any]:
    con = render.console()

    def say(message: str) -> None:
        con.print(render.text(message))

    check_folder(root)
    # aiosmtpd warns on every login that an attribute it reads itself is deprecated.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    con.rule(render.styled("Soloist demo: a freelance designer's studio", "bold"))
    started = time.time()
    with servers_for(root) as servers:
        write_workspace(root, servers)
        say(f"0. Local servers on 127.0.0.1: SMTP :{servers.smtp.port}, IMAP "
            f":{servers.imap.port}, CalDAV :{servers.caldav.port}, Stripe-compatible "
            f":{servers.stripe.port}, git :{servers.git.port}; workspace {root}")
        with Workspace(root) as ws:
            prepare(ws, servers)
            say(f"   deployed {len(ws.definitions())} definitions and the memory files "
                "(portfolio, rates, discovery script)")
            demo = FreelancerDemo(root, servers, ws, say)
            with running(ws):
                scenario(demo, lambda name: con.status(f"playing the week: {name}"))
            held = report.final(ws, servers, demo.leads.emails, say, con, started,
                                staying=keep_running)
            if keep_running:
                report.keep_running(ws, servers, say)
    return held
