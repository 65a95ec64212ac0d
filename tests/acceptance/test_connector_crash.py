"""Kill workers while they send email, create events and invoices: every effect happens once.

Two ``soloist worker`` processes share one store and three real servers: an SMTP relay
(with an IMAP account whose Sent folder the connector files into), a CalDAV server and a
Stripe-compatible one. 100 runs each create an invoice, a calendar event and send an email.
One worker is SIGKILLed at random moments and restarted; on top of that, some kills are
aimed exactly inside the SMTP transaction: the relay holds its reply to the end of DATA
(the message is recorded, as a relay that queued it), and the worker whose step is
``transmitting`` is killed before the ``250`` reaches it.

Afterwards, counted in the servers themselves: every invoice and every event exists once;
every Message-ID was delivered once, or its run waits at an ``unconfirmed`` gate whose
message says when the send was cut short (never delivered twice, never silently lost).
Those gates are then settled as a person would (delivered: resolve, "it arrived"; not
delivered: approve, "send again"), and every run ends done with each email delivered once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import stripe
from support.caldav_server import CalDAVTestServer
from support.imap_server import IMAPTestServer
from support.smtp_server import SMTPTestServer
from support.stripe_server import StripeTestServer
from support.workers import ready, start_worker
from support.workspaces import write_workspace

from soloist.integrations.billing.stripe_client import INTENT_METADATA
from soloist.integrations.entities import Contact
from soloist.integrations.mail.compose import message_id_for
from soloist.orchestration.runs import StartRequest, start_run
from soloist.workspace import Workspace

RUNS = 100
RANDOM_KILLS = 8
WINDOW_KILLS = 4
SENDER = "office@example.test"
PASSWORD = "crash-password-1"  # the mail account's (SMTP and IMAP) and the calendar's

PLAYBOOK = """
name: order
inputs:
  type: object
  properties: {n: {type: integer}}
  required: [n]
steps:
  - id: invoice
    tool: billing.create_invoice
    args:
      customer_email: "client{{ inputs.n }}@example.test"
      lines: [{description: "Design work", quantity: 2, unit_amount: 4500}]
    retry: {max_attempts: 30, backoff: 0.05}
  - id: event
    tool: cal.create
    args:
      summary: "Kickoff {{ inputs.n }}"
      start: "2027-03-01T09:00:00+00:00"
      end: "2027-03-01T10:00:00+00:00"
    retry: {max_attempts: 30, backoff: 0.05}
  - id: email
    tool: mail.send
    args:
      to: ["client{{ inputs.n }}@example.test"]
      subject: "Your invoice {{ inputs.n }}"
      text: "Hello, your invoice is attached to your account."
    retry: {max_attempts: 30, backoff: 0.05}
"""


def toml(smtp: SMTPTestServer, imap: IMAPTestServer, dav: CalDAVTestServer,
         billing: StripeTestServer) -> str:
    return f"""
[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
smtp_security = "none"
imap_host = "127.0.0.1"
imap_port = {imap.port}
imap_security = "none"
username = "{smtp.user}"
password = "secret:MAIL_PASSWORD"
from_address = "{SENDER}"
timeout = "10s"
rate = 8  # the runs then last long enough to be killed in, and bookings are crashed too

[connectors.cal]
kind = "calendar"
url = "{dav.calendar_url}"
username = "{dav.user}"
password = "secret:CAL_PASSWORD"

[connectors.billing]
kind = "billing"
api_key = "secret:STRIPE_KEY"
base_url = "{billing.url}"
currency = "eur"
"""


def leased_by(ws: Workspace, worker: subprocess.Popen[bytes]) -> list[tuple[str, str]]:
    """(run, step) of the steps ``worker`` holds the lease of now."""
    marker = f":{worker.pid}:"
    with ws.store.read() as tx:
        leased = tx.steps.expired(time.time() + 86400, 1000)
    return [(row.run_id, row.step_id) for row in leased if marker in (row.lease_owner or "")]


def transmitting_under(ws: Workspace, worker: subprocess.Popen[bytes]) -> bool:
    """Whether ``worker`` holds an email step whose intent is being transmitted."""
    with ws.store.read() as tx:
        for run_id, step_id in leased_by(ws, worker):
            if step_id != "email":
                continue
            intent = tx.intents.get(f"{run_id}/email/0")
            if intent is not None and intent.status == "transmitting":
                return True
    return False


def settled(ws: Workspace) -> tuple[dict[str, int], list[str]]:
    """Run counts by state, and the runs waiting at an unconfirmed send."""
    with ws.store.read() as tx:
        counts = tx.runs.count_by_state()
    waiting = [p.approval.run_id for p in ws.approvals()
               if p.approval.reason == "unconfirmed"]
    return counts, waiting


def all_settled(counts: dict[str, int], waiting: list[str]) -> bool:
    return counts.get("done", 0) + len(waiting) == RUNS


def event_files(dav: CalDAVTestServer) -> Counter[str]:
    """Kickoff events by summary, read from Radicale's own storage."""
    found: Counter[str] = Counter()
    for path in dav.folder.rglob("*.ics"):
        if any(part.startswith(".") for part in path.relative_to(dav.folder).parts):
            continue  # Radicale's own cache of the item
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("SUMMARY:Kickoff"):
                found[line.removeprefix("SUMMARY:")] += 1
    return found


@contextmanager
def stripe_client(billing: StripeTestServer) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient(timeout=30)
    try:
        yield stripe.StripeClient(billing.api_key, base_addresses={"api": billing.url},
                                  http_client=http, max_network_retries=0)
    finally:
        http.close()  # type: ignore[no-untyped-call]


def prepare_customers(billing: StripeTestServer) -> None:
    """The clients, already customers on a free plan: localstripe invoices only a customer
    with a subscription (tests/support/README.md)."""
    with stripe_client(billing) as client:
        product = client.v1.products.create(params={"name": "Retainer"})
        plan = client.v1.plans.create(params={"amount": 0, "currency": "eur",
                                              "interval": "month", "product": product.id})
        for n in range(RUNS):
            made = client.v1.customers.create(params={"email": f"client{n}@example.test"})
            client.v1.subscriptions.create(params={"customer": made.id,
                                                   "items": [{"plan": plan.id}]})


def invoices_by_customer(billing: StripeTestServer) -> Counter[str]:
    """The invoices the connector made (their lines carry an intent), by customer email;
    the subscriptions' own invoices are left out."""
    with stripe_client(billing) as client:
        emails = {c.id: c.email for c in
                  client.v1.customers.list(params={"limit": 100}).auto_paging_iter()}
        return Counter(
            str(emails.get(str(invoice.customer)))
            for invoice in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
            if any((line.get("metadata") or {}).get(INTENT_METADATA)
                   for line in invoice.to_dict()["lines"]["data"]))


@pytest.mark.slow
def test_killed_workers_send_each_email_once_or_ask_and_make_everything_else_once(
        tmp_path: Path, db_url: str) -> None:
    mailbox = tmp_path / "relay"
    with SMTPTestServer(folder=mailbox, password=PASSWORD) as smtp, \
            IMAPTestServer(user="sender@example.test", password=PASSWORD) as imap, \
            CalDAVTestServer(password=PASSWORD) as dav, StripeTestServer() as billing:
        root = write_workspace(tmp_path / "ws", {"order": PLAYBOOK},
                               toml=toml(smtp, imap, dav, billing))
        env = {**os.environ, "SOLOIST_DATABASE_URL": db_url, "SOLOIST_LEASE_SECONDS": "1",
               "SOLOIST_POLL_SECONDS": "0.05"}
        with Workspace(root, database_url=db_url) as ws:
            ws.secrets.set("MAIL_PASSWORD", smtp.password, "person:test")
            ws.secrets.set("CAL_PASSWORD", dav.password, "person:test")
            ws.secrets.set("STRIPE_KEY", billing.api_key, "person:test")
            prepare_customers(billing)
            ws.deploy()
            playbook = ws.registry.latest_playbook("order")
            with ws.store.transaction() as tx:
                runs = [start_run(tx, StartRequest(playbook, {"n": n}, {"test": "crash"},
                                                   "test")) for n in range(RUNS)]

            rng = random.Random(4321)
            steady, victim = start_worker(root, env), start_worker(root, env)
            random_kills = window_kills = asked = 0
            deadline = time.time() + 300
            try:
                while time.time() < deadline:
                    counts, waiting = settled(ws)
                    if all_settled(counts, waiting):
                        break
                    if window_kills < WINDOW_KILLS and random_kills >= window_kills:
                        # Hold the relay's replies until the victim is inside DATA's window.
                        smtp.hold_replies()
                        until = time.time() + 5  # below the client's timeout
                        while time.time() < until and not transmitting_under(ws, victim):
                            time.sleep(0.01)
                        hit = transmitting_under(ws, victim)
                        if hit:
                            victim.send_signal(signal.SIGKILL)
                            victim.wait()
                        smtp.release_replies()
                        if hit:
                            window_kills += 1
                            victim = start_worker(root, env)
                        continue
                    time.sleep(rng.uniform(0.1, 0.4))
                    if random_kills < RANDOM_KILLS and leased_by(ws, victim):
                        victim.send_signal(signal.SIGKILL)
                        victim.wait()
                        random_kills += 1
                        victim = start_worker(root, env)
                counts, waiting = settled(ws)
                assert all_settled(counts, waiting), (counts, waiting)

                # Counted in the servers: once each, or asked about and delivered at most once.
                delivered = SMTPTestServer.message_ids_in(mailbox)
                ids = {run: message_id_for(f"{run}/email/0", Contact(email=SENDER))
                       for run in runs}
                assert max(delivered.values()) == 1, delivered.most_common(3)
                assert set(delivered) <= set(ids.values())
                for run in waiting:
                    approval = next(p for p in ws.approvals(run_id=run))
                    assert "being sent at" in approval.approval.message
                    assert [i.tool for i in approval.intents] == ["mail.send"]
                assert all(delivered[ids[run]] == 1 for run in runs if run not in waiting)
                assert window_kills >= 2, "the kills should have hit the SMTP window"
                assert random_kills >= 3, "the victim should have been killed at random too"
                assert waiting, "a kill inside the window leaves a send only a person can settle"
                assert set(event_files(dav).values()) == {1}
                assert len(event_files(dav)) == RUNS
                invoices = invoices_by_customer(billing)
                assert len(invoices) == RUNS and set(invoices.values()) == {1}, invoices

                # A person settles each: it arrived (resolve), or it did not (send again).
                asked = len(waiting)
                for run in waiting:
                    approval = next(p for p in ws.approvals(run_id=run)).approval
                    if delivered[ids[run]]:
                        ws.resolve(approval.id, "it is in the client's inbox")
                    else:
                        ws.approve(approval.id, "send it again")
                until = time.time() + 120
                while time.time() < until and settled(ws)[0].get("done", 0) < RUNS:
                    time.sleep(0.1)
            finally:
                smtp.release_replies()
                ready_by = time.time() + 60
                while not all(ready(root, p) for p in (steady, victim)) \
                        and time.time() < ready_by:
                    time.sleep(0.05)
                for proc in (steady, victim):
                    proc.send_signal(signal.SIGTERM)
                codes = [proc.wait(60) for proc in (steady, victim)]
            counts, waiting = settled(ws)
            assert counts == {"done": RUNS}, (counts, waiting)
            assert codes == [0, 0], (root / "workers.log").read_text()[-2000:]
            delivered = SMTPTestServer.message_ids_in(mailbox)
            assert sorted(delivered) == sorted(ids.values())
            assert set(delivered.values()) == {1}
            assert ws.verify().ok
            print(f"\nconnector crash test: {RUNS} runs, {random_kills} random kills, "
                  f"{window_kills} kills inside the SMTP window, {asked} sends "
                  f"settled by a person, {sum(delivered.values())} deliveries")
