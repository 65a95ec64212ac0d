"""The demo's servers (soloist.demo.servers.LocalServers): one real round trip with each,
driven by the client library the connectors use, and counted in the servers themselves;
a stop that leaves nothing behind; a start that fails with one clear sentence.
"""

from __future__ import annotations

import datetime
import os
import smtplib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import stripe
from support.netutil import child_processes as _children

import soloist
from soloist.demo.calendars import CalDAVServer
from soloist.demo.processes import DEMO_EXTRA, HOST
from soloist.demo.repositories import git_env
from soloist.demo.servers import CalendarEntry, LocalServers
from soloist.errors import ServerFailed


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    with LocalServers(tmp_path_factory.mktemp("demo") / ".servers") as running:
        yield running


def _email(message_id: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ada@example.test"
    message["To"] = "lead@example.test"
    message["Subject"] = "A short hello"
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hello,\nthis is Ada.\n")
    return message


def _send(servers: LocalServers, message: EmailMessage, password: str | None = None) -> None:
    with smtplib.SMTP(servers.smtp.host, servers.smtp.port, timeout=10) as client:
        client.login(servers.smtp.user, password or servers.smtp.password)
        client.send_message(message)


def _event(uid: str, summary: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//soloist//tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:20260102T100000Z\r\nDTEND:20260102T110000Z\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _git(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=env,
                          timeout=60).stdout


def _refused(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


# -- one round trip with each ------------------------------------------------------------


def test_a_message_sent_over_smtp_is_counted_with_its_headers(servers: LocalServers) -> None:
    _send(servers, _email("<m1@example.test>", In_Reply_To="<lead-1@example.test>",
                          References="<out-1@example.test> <lead-1@example.test>"))

    assert servers.delivered()["<m1@example.test>"] == 1
    [sent] = [m for m in servers.delivered_messages() if m.message_id == "<m1@example.test>"]
    assert (sent.login, sent.mail_from, sent.rcpt_tos) == (
        servers.smtp.user, "ada@example.test", ("lead@example.test",))
    assert sent.subject == "A short hello"
    assert sent.in_reply_to == "<lead-1@example.test>"
    assert sent.references == ("<out-1@example.test>", "<lead-1@example.test>")
    assert sent.text == "Hello,\nthis is Ada.\n"
    # What the folder holds is the count, for any process that reads it.
    assert len(list((servers.folder / "smtp").glob("*.eml"))) == len(servers.delivered_messages())


def test_smtp_refuses_a_wrong_password_and_records_nothing(servers: LocalServers) -> None:
    before = servers.delivered()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _send(servers, _email("<refused@example.test>"), password="wrong")
    assert servers.delivered() == before


def test_a_message_delivered_to_the_inbox_is_read_back_unseen(servers: LocalServers) -> None:
    raw = _email("<reply-1@example.test>", In_Reply_To="<m1@example.test>").as_bytes()
    servers.deliver_to_inbox(raw.replace(b"\n", b"\r\n"))

    [arrived] = [m for m in servers.imap_folder("INBOX")
                 if m.message_id == "<reply-1@example.test>"]
    assert arrived.uid is not None and arrived.in_reply_to == "<m1@example.test>"
    assert arrived.text == "Hello,\nthis is Ada.\n"
    with servers.imap.client() as client:
        client.select_folder("INBOX", readonly=True)
        assert arrived.uid in client.search(["UNSEEN"])
    assert servers.imap_folder("Sent") == []  # made at start, empty


def test_a_calendar_event_made_over_caldav_is_read_back(servers: LocalServers) -> None:
    with servers.caldav.client() as client:
        calendar = client.calendar(url=servers.caldav.calendar_url)
        calendar.save_event(_event("kickoff-1", "Kickoff with Acme"))

    utc = datetime.UTC
    assert CalendarEntry("kickoff-1", "Kickoff with Acme",
                         datetime.datetime(2026, 1, 2, 10, tzinfo=utc),
                         datetime.datetime(2026, 1, 2, 11, tzinfo=utc)) \
        in servers.calendar_events()
    assert servers.caldav.calendar_url.endswith("/ada/work/")


def test_an_invoice_made_with_the_stripe_sdk_is_found_by_its_metadata(
    servers: LocalServers,
) -> None:
    assert servers.stripe.api_key.startswith("sk_test_")
    http = stripe.RequestsClient()
    try:
        v1 = stripe.StripeClient(servers.stripe.api_key, http_client=http,
                                 base_addresses={"api": servers.stripe.base_url}).v1
        customer = v1.customers.create(params={"email": "buyer@example.test"})
        # localstripe invoices only a customer with a subscription (a free plan will do).
        product = v1.products.create(params={"name": "Design"})
        plan = v1.plans.create(params={"amount": 0, "currency": "eur", "interval": "month",
                                       "product": product.id})
        v1.subscriptions.create(params={"customer": customer.id, "items": [{"plan": plan.id}]})
        v1.invoice_items.create(params={"customer": customer.id, "amount": 150000,
                                        "currency": "eur", "description": "Milestone 1"})
        metadata = {"soloist_intent": "run-1/invoice/0"}
        invoice = v1.invoices.create(params={"customer": customer.id, "metadata": metadata})
        # localstripe drops an invoice's metadata on create (the connector sets it again).
        v1.invoices.update(invoice.id, params={"metadata": metadata})
    finally:
        http.close()

    [found] = [i for i in servers.invoices() if i.metadata.get("soloist_intent") ==
               "run-1/invoice/0"]
    assert (found.id, found.status, found.amount, found.currency, found.customer_email) == (
        invoice.id, "draft", 150000, "eur", "buyer@example.test")


def test_the_demo_server_invoices_finalizes_and_sends_as_stripe_does(
    servers: LocalServers,
) -> None:
    http = stripe.RequestsClient()
    try:
        v1 = stripe.StripeClient(servers.stripe.api_key, http_client=http,
                                 base_addresses={"api": servers.stripe.base_url}).v1
        customer = v1.customers.create(params={"email": "client@example.test"})
        v1.invoice_items.create(params={"customer": customer.id, "amount": 90000,
                                        "currency": "eur", "description": "Milestone 2"})
        # No subscription needed, as on Stripe.
        invoice = v1.invoices.create(params={"customer": customer.id})
        with pytest.raises(stripe.InvalidRequestError, match="open invoice"):
            v1.invoices.send_invoice(invoice.id)  # a draft is not sent
        opened = v1.invoices.finalize_invoice(invoice.id)
        again = v1.invoices.finalize_invoice(invoice.id)  # past draft: as it is
        v1.invoices.send_invoice(invoice.id)
        voided = v1.invoices.void_invoice(invoice.id)
    finally:
        http.close()
    assert (invoice.status, invoice.total, opened.status, again.status, voided.status) == (
        "draft", 90000, "open", "open", "void")
    sent = [s for s in servers.invoices_sent() if s["id"] == invoice.id]
    assert [s["email"] for s in sent] == ["client@example.test"]


def test_a_pushed_commit_is_read_back_with_its_intent_trailer(
    servers: LocalServers, tmp_path: Path
) -> None:
    url = servers.create_repository("acme-site")
    assert url == f"git://{HOST}:{servers.git.port}/acme-site.git"
    assert servers.commits("acme-site") == []  # nothing pushed yet
    env, work = git_env(tmp_path), tmp_path / "work"
    _git(env, "clone", "--quiet", url, str(work))
    (work / "MILESTONES.md").write_text("# Milestones\n")
    _git(env, "-C", str(work), "add", "MILESTONES.md")
    _git(env, "-C", str(work), "commit", "--quiet", "-m",
         "Add the milestones\n\nTwo of them.\n\nSoloist-Intent: run-1/commit/0\n")
    _git(env, "-C", str(work), "push", "--quiet", "origin", "HEAD:main")

    [commit] = servers.commits("acme-site", "main")
    assert (commit.subject, commit.intent) == ("Add the milestones", "run-1/commit/0")
    assert commit.trailers == (("Soloist-Intent", "run-1/commit/0"),)
    assert commit.sha == _git(env, "-C", str(work), "rev-parse", "HEAD").strip()
    assert servers.create_repository("acme-site") == url  # kept, with its commit
    assert len(servers.commits("acme-site")) == 1


# -- stopping and failing ----------------------------------------------------------------


def test_stop_leaves_no_process_and_frees_every_port_and_a_restart_keeps_the_disk(
    tmp_path: Path,
) -> None:
    children, threads = _children(), set(threading.enumerate())
    servers = LocalServers(tmp_path / ".servers", password="pw").start()
    ports = [server.port for server in servers.servers]
    pids = {server.pid for server in servers.processes}
    assert len(set(ports)) == 5 and None not in pids and pids <= _children()
    _send(servers, _email("<kept@example.test>"))
    with servers.caldav.client() as client:
        client.calendar(url=servers.caldav.calendar_url).save_event(_event("kept-1", "Kept"))
    servers.create_repository("kept")
    servers.stop()

    assert _children() == children
    assert set(threading.enumerate()) == threads  # the SMTP server's thread is gone too
    assert all(_refused(port) for port in ports)
    servers.stop()  # stopping twice is fine

    with LocalServers(tmp_path / ".servers", password="pw") as again:
        assert again.delivered() == {"<kept@example.test>": 1}
        assert [event.uid for event in again.calendar_events()] == ["kept-1"]
        assert again.commits("kept") == []
        assert (again.folder / "git" / "repos" / "kept.git").is_dir()


def test_a_server_whose_port_is_taken_is_named_and_the_others_are_stopped(
    tmp_path: Path,
) -> None:
    with socket.socket() as held:
        held.bind((HOST, 0))  # bound, not listening: taken, yet nothing answers there
        servers = LocalServers(tmp_path / ".servers")
        servers.caldav = CalDAVServer(tmp_path / ".servers" / "caldav", user="ada",
                                      password="pw", port=held.getsockname()[1])
        children = _children()
        with pytest.raises(ServerFailed) as failed:
            servers.start()

    message = str(failed.value)
    assert message.startswith("the CalDAV (radicale) server did not start: it exited with code")
    assert "in use" in message and "\n" not in message
    assert _children() == children
    assert all(server.pid is None for server in servers.processes)
    assert _refused(servers.smtp.port)


def test_a_server_that_exits_at_once_is_named_with_the_end_of_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = LocalServers(tmp_path / ".servers")
    monkeypatch.setattr(servers.git, "command", lambda: ["git", "daemon", "--no-such-option"])
    children = _children()
    with pytest.raises(ServerFailed, match=r"^the git \(git daemon\) server did not start: it "
                                           r"exited with code \d+; its log ends: .*--listen"):
        servers.start()
    assert _children() == children
    assert _refused(servers.smtp.port)


IMPORT_THEN_START = """
import sys
from pathlib import Path

import soloist.demo.servers
from soloist.errors import ConfigError

heavy = {"aiosmtpd", "pymap", "radicale", "localstripe", "caldav", "stripe", "imapclient",
         "icalendar", "requests"}
print(sorted(name for name in sys.modules if name.partition(".")[0] in heavy))
for name in heavy:
    sys.modules[name] = None  # as if it were not installed
try:
    soloist.demo.servers.LocalServers(Path(sys.argv[1])).start()
except ConfigError as error:
    print(error)
"""


def test_importing_costs_nothing_and_a_missing_package_is_one_sentence(tmp_path: Path) -> None:
    sources = str(Path(soloist.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", IMPORT_THEN_START, str(tmp_path)],
                          env={**os.environ, "PYTHONPATH": sources}, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["[]", DEMO_EXTRA]
    assert list(tmp_path.iterdir()) == []  # nothing was started
