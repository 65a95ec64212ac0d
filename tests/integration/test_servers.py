"""Smoke tests of the real local servers in tests/support, each driven by the client
library the connectors will use (smtplib, imapclient, caldav, stripe, the git CLI).

They also pin down the server behaviours the connectors rely on (or must work around),
as written in tests/support/README.md: a failing assertion here means a server upgrade
changed a quirk the connectors know about.
"""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
import stripe
from support.caldav_server import CalDAVTestServer
from support.git_server import GitTestServer, git_env
from support.imap_server import IMAPTestServer
from support.smtp_server import SMTPTestServer
from support.stripe_server import StripeTestServer

# ---------------------------------------------------------------------------------------
# SMTP
# ---------------------------------------------------------------------------------------


def _email(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.test"
    message["To"] = "someone@example.test"
    message["Subject"] = "hello"
    message["Message-ID"] = message_id
    message.set_content("a body\n")
    return message


def test_smtp_accepts_an_authenticated_message_and_records_it(
    smtp_server: SMTPTestServer,
) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.login(smtp_server.user, smtp_server.password)
        client.send_message(_email("<one@example.test>"))

    [received] = smtp_server.messages
    assert received.login == smtp_server.user
    assert received.mail_from == "sender@example.test"
    assert received.rcpt_tos == ("someone@example.test",)
    assert b"a body" in received.data
    assert smtp_server.message_ids() == {"<one@example.test>": 1}


def test_smtp_refuses_bad_credentials_and_unauthenticated_senders(
    smtp_server: SMTPTestServer,
) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad_login:
            client.login(smtp_server.user, "wrong")
        assert bad_login.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(_email("<two@example.test>"))
        assert refused.value.smtp_code == 530
    assert smtp_server.messages == []


def test_smtp_answers_the_chosen_error_and_records_nothing(smtp_server: SMTPTestServer) -> None:
    smtp_server.reply_error = "451 4.3.0 try again later"
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.login(smtp_server.user, smtp_server.password)
        with pytest.raises(smtplib.SMTPDataError) as error:
            client.send_message(_email("<three@example.test>"))
    assert error.value.smtp_code == 451
    assert smtp_server.messages == []


def test_smtp_message_is_recorded_while_its_reply_is_held(smtp_server: SMTPTestServer) -> None:
    # The message is complete on the server while the client still waits for the reply:
    # the sender cannot know yet whether it was delivered (the crash test's window).
    smtp_server.hold_replies()
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=30) as client:
                client.login(smtp_server.user, smtp_server.password)
                client.send_message(_email("<four@example.test>"))
        except BaseException as error:
            errors.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    [received] = smtp_server.wait_for_messages(1)
    assert received.message_id == "<four@example.test>"
    assert sender.is_alive()  # still waiting for the 250
    smtp_server.release_replies()
    sender.join()
    assert errors == []


def test_smtp_message_of_a_sender_gone_before_the_reply_stays_delivered(
    tmp_path: Path,
) -> None:
    # What a crash inside the window leaves behind: delivered, never acknowledged.
    folder = tmp_path / "mail"
    with SMTPTestServer(folder=folder) as server:
        server.hold_replies()
        client = smtplib.SMTP(server.host, server.port, timeout=10)
        client.login(server.user, server.password)
        client.mail("sender@example.test")
        client.rcpt("someone@example.test")
        assert client.docmd("DATA")[0] == 354
        client.send(_email("<gone@example.test>").as_bytes().replace(b"\n", b"\r\n"))
        client.send(b".\r\n")
        server.wait_for_messages(1)
        client.close()  # without reading the reply
        server.release_replies()

    # A server restarted on the same folder keeps counting.
    with SMTPTestServer(folder=folder, reply_delay=0.05) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.login(server.user, server.password)
            client.send_message(_email("<again@example.test>"))
    assert SMTPTestServer.message_ids_in(folder) == {
        "<gone@example.test>": 1,
        "<again@example.test>": 1,
    }


def test_smtp_starttls_with_a_certificate_made_at_start() -> None:
    with SMTPTestServer(starttls=True) as server:
        assert isinstance(server.client_ssl_context, ssl.SSLContext)
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.starttls(context=server.client_ssl_context)
            client.login(server.user, server.password)
            client.send_message(_email("<five@example.test>"))
        assert server.message_ids() == {"<five@example.test>": 1}


# ---------------------------------------------------------------------------------------
# IMAP
# ---------------------------------------------------------------------------------------


def test_imap_delivered_mail_is_found_by_message_id(imap_server: IMAPTestServer) -> None:
    imap_server.deliver(
        b"From: a@example.test\r\nTo: reader@example.test\r\nSubject: hi\r\n"
        b"Message-ID: <in-1@example.test>\r\n\r\nhello\r\n"
    )
    with imap_server.client() as client:
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        assert client.search(["UNSEEN"]) == client.search(
            ["HEADER", "Message-ID", "<in-1@example.test>"]
        )
        assert client.search(["HEADER", "Message-ID", "<absent@example.test>"]) == []


def test_imap_append_to_sent_then_search_and_read_it_back(imap_server: IMAPTestServer) -> None:
    raw = (
        b"From: reader@example.test\r\nTo: a@example.test\r\nSubject: re: hi\r\n"
        b"Message-ID: <out-1@example.test>\r\n\r\nreply\r\n"
    )
    with imap_server.client() as client:
        client.append("Sent", raw)
        client.select_folder("Sent")
        [uid] = client.search(["HEADER", "Message-ID", "<out-1@example.test>"])
    assert imap_server.folder_messages("Sent") == {uid: raw}


def test_imap_refuses_bad_credentials(imap_server: IMAPTestServer) -> None:
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    with IMAPClient(imap_server.host, imap_server.port, ssl=False, timeout=10) as client:
        with pytest.raises(LoginError):
            client.login(imap_server.user, "wrong")


# ---------------------------------------------------------------------------------------
# CalDAV
# ---------------------------------------------------------------------------------------

_EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//soloist//tests//EN\r\n"
    "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20260102T100000Z\r\nDTEND:20260102T110000Z\r\nSUMMARY:{summary}\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_caldav_event_round_trip_and_sync_token(caldav_server: CalDAVTestServer) -> None:
    with caldav_server.client() as client:
        calendar = client.calendar(url=caldav_server.calendar_url)
        first = calendar.save_event(_EVENT.format(uid="ev-1", summary="one"))
        initial = calendar.objects_by_sync_token(load_objects=False)
        assert [str(o.url) for o in initial] == [str(first.url)]

        second = calendar.save_event(_EVENT.format(uid="ev-2", summary="two"))
        changed = calendar.objects_by_sync_token(sync_token=initial.sync_token, load_objects=False)
        assert [str(o.url) for o in changed] == [str(second.url)]
        assert changed.sync_token != initial.sync_token

        assert "SUMMARY:one" in calendar.event_by_uid("ev-1").data


_SYNC_REPORT = (
    '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/></D:prop></D:sync-collection>"
)


def test_caldav_sync_report_lists_deletions_and_refuses_unknown_tokens(
    caldav_server: CalDAVTestServer,
) -> None:
    with caldav_server.client() as client:
        calendar = client.calendar(url=caldav_server.calendar_url)
        event = calendar.save_event(_EVENT.format(uid="ev-gone", summary="gone"))
        token = calendar.objects_by_sync_token(load_objects=False).sync_token
        event.delete()

    def report(sync_token: str) -> requests.Response:
        return requests.request(
            "REPORT",
            caldav_server.calendar_url,
            data=_SYNC_REPORT.format(token=sync_token),
            headers={"Content-Type": "application/xml; charset=utf-8", "Depth": "1"},
            auth=(caldav_server.user, caldav_server.password),
            timeout=10,
        )

    changed = report(token)
    assert changed.status_code == 207
    assert "/planner/calendar/ev-gone.ics</href><status>HTTP/1.1 404 Not Found" in changed.text
    unknown = report("http://radicale.org/ns/sync/unknown")
    assert unknown.status_code == 403
    assert "valid-sync-token" in unknown.text


def test_caldav_create_only_put_answers_412_on_an_existing_resource(
    caldav_server: CalDAVTestServer,
) -> None:
    url = caldav_server.calendar_url + "ev-3.ics"
    headers = {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"}
    body = _EVENT.format(uid="ev-3", summary="three")
    auth = (caldav_server.user, caldav_server.password)
    with requests.Session() as http:
        created = http.put(url, data=body, headers=headers, auth=auth, timeout=10)
        again = http.put(url, data=body, headers=headers, auth=auth, timeout=10)
        # The same UID under another resource name is a conflict, not a second event.
        other = http.put(url[:-4] + "-copy.ics", data=body, headers=headers, auth=auth, timeout=10)
        unauthorized = http.get(url, auth=(caldav_server.user, "wrong"), timeout=10)
    assert created.status_code == 201
    assert created.headers["ETag"]
    assert again.status_code == 412
    assert other.status_code == 409
    assert unauthorized.status_code == 401


# ---------------------------------------------------------------------------------------
# Stripe-compatible billing
# ---------------------------------------------------------------------------------------


@pytest.fixture
def stripe_client(stripe_server: StripeTestServer) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient()
    try:
        yield stripe.StripeClient(
            stripe_server.api_key, base_addresses={"api": stripe_server.url}, http_client=http
        )
    finally:
        http.close()


def test_stripe_customer_invoice_with_lines_then_void(stripe_client: stripe.StripeClient) -> None:
    v1 = stripe_client.v1
    customer = v1.customers.create(params={"email": "buyer@example.test", "name": "Buyer"})
    # localstripe makes invoices only for a customer with a subscription (a free plan
    # will do); pending invoice items become its lines.
    product = v1.products.create(params={"name": "Consulting"})
    plan = v1.plans.create(
        params={"amount": 0, "currency": "eur", "interval": "month", "product": product.id}
    )
    subscription = v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    v1.invoice_items.create(
        params={"customer": customer.id, "amount": 1500, "currency": "eur", "description": "work"}
    )
    invoice = v1.invoices.create(params={"customer": customer.id, "subscription": subscription.id})
    assert invoice.status == "draft"
    assert invoice.total == 1500
    assert [(line.amount, line.description) for line in invoice.lines.data] == [
        (0, "Consulting"),
        (1500, "work"),
    ]

    # No finalize endpoint: paying is what turns a draft into an open invoice. With a
    # card that is declined it stays open, and an open invoice can be voided.
    card = v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    v1.payment_methods.attach(card.id, params={"customer": customer.id})
    v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    with pytest.raises(stripe.APIError):
        v1.invoices.finalize_invoice(invoice.id)
    assert v1.invoices.pay(invoice.id).status == "open"
    assert v1.invoices.void_invoice(invoice.id).status == "void"
    assert v1.invoices.retrieve(invoice.id).status == "void"


def test_stripe_ignores_idempotency_key(stripe_client: stripe.StripeClient) -> None:
    # Written down because the connector must not rely on it against localstripe.
    options: stripe.RequestOptions = {"idempotency_key": "same-key"}
    first = stripe_client.v1.customers.create(params={"email": "x@example.test"}, options=options)
    second = stripe_client.v1.customers.create(params={"email": "x@example.test"}, options=options)
    assert first.id != second.id
    listed = stripe_client.v1.customers.list(params={"email": "x@example.test"})
    assert len(listed.data) == 2


def test_stripe_rate_limit_storm_then_recovery(
    stripe_server: StripeTestServer, stripe_client: stripe.StripeClient
) -> None:
    stripe_server.rate_limit(2, retry_after=1)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as limited:
            stripe_client.v1.customers.list(options={"max_network_retries": 0})
        assert limited.value.http_status == 429
        assert limited.value.headers is not None
        assert limited.value.headers.get("Retry-After") == "1"
    assert stripe_client.v1.customers.list(options={"max_network_retries": 0}).data == []


def test_stripe_refuses_a_malformed_key(stripe_server: StripeTestServer) -> None:
    http = stripe.RequestsClient()
    try:
        client = stripe.StripeClient(
            "not-a-key", base_addresses={"api": stripe_server.url}, http_client=http
        )
        with pytest.raises(stripe.AuthenticationError):
            client.v1.customers.list()
    finally:
        http.close()


# ---------------------------------------------------------------------------------------
# git
# ---------------------------------------------------------------------------------------


def test_git_clone_commit_push(git_server: GitTestServer, tmp_path: Path) -> None:
    url = git_server.create_repository("notes")
    env = git_env(tmp_path)
    work = tmp_path / "work"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], check=True, capture_output=True, text=True, env=env, timeout=60
        )

    git("clone", "--quiet", url, str(work))
    (work / "note.md").write_text("first note\n")
    git("-C", str(work), "add", "note.md")
    git("-C", str(work), "commit", "--quiet", "-m", "add a note")
    git("-C", str(work), "push", "--quiet", "origin", "HEAD:main")

    assert git_server.log("notes") == ["add a note"]
    assert "refs/heads/main" in git("ls-remote", url).stdout


def test_git_unknown_repository_is_a_clear_remote_error(
    git_server: GitTestServer, tmp_path: Path
) -> None:
    done = subprocess.run(
        ["git", "ls-remote", git_server.url("absent")],
        capture_output=True,
        text=True,
        env=git_env(tmp_path),
        timeout=60,
    )
    assert done.returncode != 0
    assert "no such repository" in done.stderr
