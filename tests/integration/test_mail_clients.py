"""The SMTP and IMAP clients against the real aiosmtpd and pymap harnesses: every
operation, and each way one fails (bad password, nothing listening, a refusing or slow
server, a lost reply), translated into Soloist's error kinds."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator

import pytest
from support.imap_server import IMAPTestServer
from support.netutil import free_port
from support.smtp_server import SMTPTestServer

from soloist.errors import DeterministicError, OutcomeUnknown, TransientError
from soloist.integrations.entities import Contact
from soloist.integrations.mail import compose
from soloist.integrations.mail.imap import Cursor, IMAPClient
from soloist.integrations.mail.smtp import SMTPClient

ADA = Contact(name="Ada", email="ada@example.test")
BOB = Contact(name="Bob", email="bob@example.test")


def _draft(**fields: object) -> compose.Draft:
    return compose.Draft.model_validate(
        {"sender": ADA, "to": (BOB,), "subject": "Hello", "text": "Hi Bob.\n.leading dot\n",
         **fields})


def _smtp(server: SMTPTestServer, *, password: str | None = None,
          timeout: float = 10.0) -> SMTPClient:
    return SMTPClient(server.host, server.port, username=server.user,
                      password=server.password if password is None else password,
                      security="none", timeout=timeout)


def _raw(message_id: str, subject: str = "note") -> bytes:
    return (f"From: Carol <carol@example.test>\r\nTo: ada@example.test\r\n"
            f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
            "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nbody\r\n").encode()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word: a
    server too slow to greet."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.fixture
def imap(imap_server: IMAPTestServer) -> Iterator[IMAPClient]:
    with IMAPClient(imap_server.host, imap_server.port, username=imap_server.user,
                    password=imap_server.password, security="none", timeout=10) as client:
        yield client


# -- SMTP ---------------------------------------------------------------------------------

def test_smtp_sends_with_auth_and_keeps_threading_headers(smtp_server: SMTPTestServer) -> None:
    draft = _draft(in_reply_to="<first@example.test>",
                   references=("<root@example.test>", "<first@example.test>"),
                   bcc=(Contact(email="boss@example.test"),))
    message = compose.build(draft, "intent-1")
    with _smtp(smtp_server) as client:
        reply = client.send(message, ADA.email, compose.recipients(draft))
    assert reply.code == 250
    assert reply.message_id == compose.message_id_for("intent-1", ADA)
    assert smtp_server.message_ids() == {reply.message_id: 1}
    [received] = smtp_server.messages
    assert received.login == smtp_server.user
    assert received.rcpt_tos == ("bob@example.test", "boss@example.test")
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["In-Reply-To"] == "<first@example.test>"
    assert parsed["References"] == "<root@example.test> <first@example.test>"
    assert parsed["Bcc"] is None
    assert ".leading dot" in parsed.get_content()  # the doubled dot was undone by the server


def test_smtp_sends_two_messages_on_one_connection(smtp_server: SMTPTestServer) -> None:
    draft = _draft()
    with _smtp(smtp_server) as client:
        for key in ("a", "b"):
            client.send(compose.build(draft, key), ADA.email, compose.recipients(draft))
    assert sum(smtp_server.message_ids().values()) == 2


def test_smtp_starttls() -> None:
    with SMTPTestServer(starttls=True) as server:
        draft = _draft()
        with SMTPClient(server.host, server.port, username=server.user,
                        password=server.password, security="starttls",
                        ssl_context=server.client_ssl_context, timeout=10) as client:
            client.send(compose.build(draft, "tls"), ADA.email, compose.recipients(draft))
        assert len(server.messages) == 1


def test_smtp_certificate_that_does_not_verify_is_deterministic() -> None:
    with SMTPTestServer(starttls=True) as server:
        client = SMTPClient(server.host, server.port, username=server.user,
                            password=server.password, security="starttls", timeout=10)
        with pytest.raises(DeterministicError, match="certificate does not verify"):
            client.open()


def test_smtp_bad_password_is_deterministic_and_names_no_secret(
    smtp_server: SMTPTestServer,
) -> None:
    client = _smtp(smtp_server, password="wrong-secret")
    with pytest.raises(DeterministicError) as error:
        client.open()
    assert str(error.value) == (f"cannot log in to {smtp_server.host}:{smtp_server.port} as "
                                f"{smtp_server.user}: authentication failed")
    assert "wrong-secret" not in str(error.value) and "wrong-secret" not in repr(client)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_smtp_unauthenticated_sender_is_refused_before_data(
    smtp_server: SMTPTestServer,
) -> None:
    draft = _draft()
    with SMTPClient(smtp_server.host, smtp_server.port, security="none", timeout=10) as client:
        with pytest.raises(DeterministicError, match=r"refused the sender .* 530"):
            client.send(compose.build(draft, "k"), ADA.email, compose.recipients(draft))
    assert smtp_server.messages == []


def test_smtp_one_refused_recipient_sends_to_nobody(smtp_server: SMTPTestServer) -> None:
    draft = _draft()
    with _smtp(smtp_server) as client:
        with pytest.raises(DeterministicError, match="refused the recipient a@@b: 553"):
            client.send(compose.build(draft, "k"), ADA.email, [BOB.email, "a@@b"])
        assert smtp_server.messages == []
        client.send(compose.build(draft, "k"), ADA.email, [BOB.email])
    assert [m.rcpt_tos for m in smtp_server.messages] == [(BOB.email,)]


def test_smtp_port_nothing_listens_on_is_transient() -> None:
    port = free_port()
    with pytest.raises(TransientError, match=f"cannot connect to 127.0.0.1:{port}: "
                                             "connection refused") as error:
        SMTPClient("127.0.0.1", port, security="none", timeout=5).open()
    assert not isinstance(error.value, OutcomeUnknown)


def test_smtp_server_that_never_greets_times_out_as_transient(silent_port: int) -> None:
    with pytest.raises(TransientError, match="timed out") as error:
        SMTPClient("127.0.0.1", silent_port, security="none", timeout=0.5).open()
    assert not isinstance(error.value, OutcomeUnknown)


def test_smtp_starttls_missing_on_the_server_is_deterministic(
    smtp_server: SMTPTestServer,
) -> None:
    client = SMTPClient(smtp_server.host, smtp_server.port, username=smtp_server.user,
                        password=smtp_server.password, security="starttls", timeout=10)
    with pytest.raises(DeterministicError, match="does not support STARTTLS"):
        client.open()


@pytest.mark.parametrize(("line", "kind"), [("451 4.3.0 try again later", TransientError),
                                             ("550 5.7.1 rejected", DeterministicError)])
def test_smtp_reply_to_data_maps_by_its_first_digit(
    smtp_server: SMTPTestServer, line: str, kind: type[Exception],
) -> None:
    smtp_server.reply_error = line
    draft = _draft()
    with _smtp(smtp_server) as client:
        with pytest.raises(kind, match=line.split()[0]) as error:
            client.send(compose.build(draft, "k"), ADA.email, compose.recipients(draft))
        # A definite answer: not "unknown", and the connection still serves a next message.
        assert not isinstance(error.value, OutcomeUnknown)
        smtp_server.reply_error = None
        client.send(compose.build(draft, "k2"), ADA.email, compose.recipients(draft))
    assert len(smtp_server.messages) == 1


def test_smtp_connection_killed_while_the_reply_is_held_is_outcome_unknown(
    smtp_server: SMTPTestServer,
) -> None:
    smtp_server.hold_replies()
    draft = _draft()
    message = compose.build(draft, "held")
    client = _smtp(smtp_server, timeout=30).open()
    raised: list[BaseException] = []

    def send() -> None:
        try:
            client.send(message, ADA.email, compose.recipients(draft))
        except BaseException as error:
            raised.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    smtp_server.wait_for_messages(1)
    sock = client._smtp.sock if client._smtp is not None else None
    assert sock is not None
    sock.shutdown(2)  # the connection dies with the server's 250 still unsent
    sender.join()
    smtp_server.release_replies()
    [error] = raised
    assert isinstance(error, OutcomeUnknown) and error.kind == "transient"
    assert message["Message-ID"] in str(error) and "may have been delivered" in str(error)
    # ... and it was: the caller must reconcile, not simply resend.
    assert smtp_server.message_ids() == {message["Message-ID"]: 1}


def test_smtp_slow_reply_times_out_as_outcome_unknown(smtp_server: SMTPTestServer) -> None:
    smtp_server.hold_replies()
    draft = _draft()
    with _smtp(smtp_server, timeout=0.5) as client:
        with pytest.raises(OutcomeUnknown, match="timed out"):
            client.send(compose.build(draft, "slow"), ADA.email, compose.recipients(draft))
    smtp_server.release_replies()


def test_smtp_send_without_open_or_recipients_is_deterministic(
    smtp_server: SMTPTestServer,
) -> None:
    message = compose.build(_draft(), "k")
    with pytest.raises(DeterministicError, match="not open"):
        _smtp(smtp_server).send(message, ADA.email, [BOB.email])
    with _smtp(smtp_server) as client, pytest.raises(DeterministicError, match="recipient"):
        client.send(message, ADA.email, [])


# -- IMAP ---------------------------------------------------------------------------------

def test_imap_fetches_by_uid_since_the_cursor(imap_server: IMAPTestServer,
                                               imap: IMAPClient) -> None:
    for n in range(3):
        imap_server.deliver(_raw(f"<m{n}@example.test>", f"note {n}"))
    first = imap.fetch_new(None)
    assert [f.message.message_id for f in first.messages] == [
        "<m0@example.test>", "<m1@example.test>", "<m2@example.test>"]
    uids = [f.uid for f in first.messages]
    assert uids == sorted(uids) and first.cursor.last_uid == uids[-1]
    assert first.cursor.uidvalidity == imap.uidvalidity() and not first.restarted
    assert first.messages[0].message.subject == "note 0"
    assert first.messages[0].message.from_ == Contact(name="Carol", email="carol@example.test")

    again = imap.fetch_new(first.cursor)
    assert again.messages == () and again.cursor == first.cursor

    imap_server.deliver(_raw("<m3@example.test>"))
    later = imap.fetch_new(Cursor.from_json(first.cursor.to_json()))
    assert [f.message.message_id for f in later.messages] == ["<m3@example.test>"]
    assert later.messages[0].uid > first.cursor.last_uid
    # Reading peeks: nothing was marked seen.
    with imap_server.client() as raw:
        raw.select_folder("INBOX", readonly=True)
        assert raw.search("SEEN") == []


def test_imap_batches_and_says_more_is_waiting(imap_server: IMAPTestServer,
                                                imap: IMAPClient) -> None:
    for n in range(5):
        imap_server.deliver(_raw(f"<b{n}@example.test>"))
    cursor: Cursor | None = None
    seen: list[str | None] = []
    mores = []
    while True:
        batch = imap.fetch_new(cursor, limit=2)
        seen += [f.message.message_id for f in batch.messages]
        mores.append(batch.more)
        cursor = batch.cursor
        if not batch.messages:
            break
    assert seen == [f"<b{n}@example.test>" for n in range(5)]
    assert mores == [True, True, False, False]


def test_imap_uidvalidity_change_starts_over(imap_server: IMAPTestServer,
                                             imap: IMAPClient) -> None:
    imap_server.deliver(_raw("<v@example.test>"))
    batch = imap.fetch_new(None)
    stale = Cursor(uidvalidity=batch.cursor.uidvalidity + 1, last_uid=batch.cursor.last_uid)
    restarted = imap.fetch_new(stale)
    assert restarted.restarted
    assert [f.message.message_id for f in restarted.messages] == ["<v@example.test>"]
    assert restarted.cursor == batch.cursor


def test_imap_append_to_sent_then_search_by_message_id(imap_server: IMAPTestServer,
                                                       imap: IMAPClient) -> None:
    message = compose.build(_draft(), "intent-7")
    raw = message.as_bytes()
    uid = imap.append_sent(raw)
    assert uid is not None and imap_server.folder_messages("Sent") == {uid: raw}
    assert imap.search_message_id(message["Message-ID"]) == [uid]
    assert imap.search_message_id("<unknown@example.test>") == []


def test_imap_append_creates_a_missing_sent_folder(imap_server: IMAPTestServer,
                                                   imap: IMAPClient) -> None:
    assert imap.search_message_id("<x@example.test>", folder="Sent Items") == []
    uid = imap.append_sent(_raw("<x@example.test>"), folder="Sent Items")
    assert "Sent Items" in imap.folders()
    assert imap.search_message_id("<x@example.test>", folder="Sent Items") == [uid]
    with imap_server.client() as raw:
        raw.select_folder("Sent Items", readonly=True)
        assert raw.search("SEEN") == [uid]


def test_imap_mark_seen_and_move(imap_server: IMAPTestServer, imap: IMAPClient) -> None:
    imap_server.deliver(_raw("<s1@example.test>"))
    imap_server.deliver(_raw("<s2@example.test>"))
    first, second = imap.fetch_new(None).messages
    imap.mark_seen([first.uid])
    with imap_server.client() as raw:
        raw.select_folder("INBOX", readonly=True)
        assert raw.search("SEEN") == [first.uid]
    imap.append_sent(_raw("<nothing@example.test>"), folder="Archive")
    imap.move([second.uid], "Archive")
    assert imap.search_message_id("<s2@example.test>", folder="Archive") != []
    assert imap.search_message_id("<s2@example.test>", folder="INBOX") == []


def test_imap_malformed_message_parses_with_problems(imap_server: IMAPTestServer,
                                                     imap: IMAPClient) -> None:
    imap_server.deliver(b"From: <<<not an address\r\nDate: yesterday-ish\r\n"
                        b"Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n"
                        b"\xff\xfe garbage with no boundary\r\n")
    [fetched] = imap.fetch_new(None).messages
    assert fetched.message.problems
    assert fetched.message.date is None


def test_imap_bad_password_is_deterministic(imap_server: IMAPTestServer) -> None:
    client = IMAPClient(imap_server.host, imap_server.port, username=imap_server.user,
                        password="wrong-secret", security="none", timeout=10)
    with pytest.raises(DeterministicError) as error:
        client.open()
    assert str(error.value) == (f"cannot log in to {imap_server.host}:{imap_server.port} as "
                                f"{imap_server.user}: authentication failed")
    assert "wrong-secret" not in str(error.value)


def test_imap_port_nothing_listens_on_is_transient() -> None:
    port = free_port()
    client = IMAPClient("127.0.0.1", port, username="ada", password="pw", security="none",
                        timeout=5)
    with pytest.raises(TransientError, match="connection refused"):
        client.open()


def test_imap_server_that_never_greets_times_out_as_transient(silent_port: int) -> None:
    client = IMAPClient("127.0.0.1", silent_port, username="ada", password="pw",
                        security="none", timeout=0.5)
    with pytest.raises(TransientError, match="timed out"):
        client.open()


def test_imap_reconnects_after_a_lost_connection(imap_server: IMAPTestServer,
                                                 imap: IMAPClient) -> None:
    imap_server.deliver(_raw("<r@example.test>"))
    assert imap._client is not None
    imap._client.socket().shutdown(socket.SHUT_RDWR)
    with pytest.raises(TransientError, match="connection was lost"):
        imap.fetch_new(None)
    assert len(imap.open().fetch_new(None).messages) == 1


def test_imap_unknown_folder_is_deterministic(imap: IMAPClient) -> None:
    with pytest.raises(DeterministicError, match="cannot open the folder 'Nope'"):
        imap.fetch_new(None, folder="Nope")


def test_imap_server_gone_mid_session_is_transient(imap_server: IMAPTestServer,
                                                   imap: IMAPClient) -> None:
    imap.fetch_new(None)
    imap_server.stop()
    with pytest.raises(TransientError):
        imap.fetch_new(None)
    with pytest.raises(DeterministicError, match="not open"):
        imap.fetch_new(None)
