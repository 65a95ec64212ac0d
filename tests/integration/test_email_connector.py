"""The email connector in worker runs, against the real aiosmtpd and pymap servers, on SQLite
and PostgreSQL: a send is delivered once under the Message-ID its intent derives and filed
in Sent; replies thread and carry attachments; new mail starts playbooks and names the run
it answers; broken mail still becomes an event; each way a server fails has its kind; and a
send cut short is settled through the Sent folder or by a person, counted in the server."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.imap_server import IMAPTestServer
from support.netutil import free_port
from support.smtp_server import SMTPTestServer
from support.workspaces import write_workspace

import soloist
from soloist.errors import DeterministicError, InvalidPayload
from soloist.execution.context import ToolCall
from soloist.integrations.entities import Contact
from soloist.integrations.mail.compose import Draft, build, message_id_for
from soloist.integrations.mail.parse import attachment_contents, parse_message
from soloist.integrations.mail.smtp import SMTPClient
from soloist.workspace import Workspace

SENDER = "ada@example.test"
USER = "sender@example.test"
PASSWORD = "mail-s3cret-pw"  # a secret this short would be refused
ADA = Contact(email=SENDER)

TASKS = '''
def answer(ctx, message):
    ctx.stage("mail.reply", {
        "message": message, "text": "Here it is.",
        "attachments": [{"name": "plan.pdf", "content_type": "application/pdf",
                         "content_base64": "PLAN"}]})
    return {"answered": message["message_id"]}


def seen(ctx, **fields):
    return fields


def tidy(ctx, found):
    uids = [f["uid"] for f in found]
    ctx.stage("mail.mark_seen", {"uids": uids})
    ctx.stage("mail.move", {"uids": uids[:1], "destination": "Archive"})
    return {"uids": uids}
'''.replace("PLAN", base64.b64encode(b"%PDF-1.4 \x00\xff binary plan").decode())

NOTIFY = """
name: notify
steps:
  - id: send
    tool: mail.send
    args:
      to: ["Bob Stone <bob@example.test>"]
      cc: ["carol@example.test"]
      subject: "{{ inputs.subject }}"
      text: "Hello Bob."
    retry: {max_attempts: 2, backoff: 0.01, jitter: 0}
"""

GATED = """
name: gated
steps:
  - id: send
    tool: mail.send
    args: {to: ["bob@example.test"], subject: "Invoice", text: "Attached."}
    gate: {message: "Send the invoice?"}
"""

ANSWER = """
name: answer
steps:
  - {id: reply, python: "tasks:answer", args: {message: "{{ inputs.message }}"}}
"""

ON_REPLY = """
name: on_reply
triggers:
  - event: email.received
    when: "'Re:' in event.payload.message.subject"
    inputs:
      run: "{{ event.payload.reply_to_run }}"
      subject: "{{ event.payload.message.subject }}"
steps:
  - {id: look, python: "tasks:seen", args: {run: "{{ inputs.run }}"}}
"""

TIDY = """
name: tidy
steps:
  - id: find
    tool: mail.search
    args: {from_address: "carol@example.test", since: "2026-11-30", limit: 10}
  - {id: act, python: "tasks:tidy", args: {found: "{{ steps.find.output }}"}, needs: [find]}
"""

PLAYBOOKS = {"notify": NOTIFY, "gated": GATED, "answer": ANSWER, "on_reply": ON_REPLY,
             "tidy": TIDY}


def _toml(smtp_port: int, imap: IMAPTestServer | None, **extra: Any) -> str:
    lines = ["[connectors.mail]", 'kind = "email"', 'smtp_host = "127.0.0.1"',
             f"smtp_port = {smtp_port}", 'smtp_security = "none"',
             'username = "sender@example.test"', 'password = "secret:MAIL_PASSWORD"',
             f'from_address = "{SENDER}"']
    extra.setdefault("timeout", 5)
    if imap is not None:
        lines += ['imap_host = "127.0.0.1"', f"imap_port = {imap.port}",
                  'imap_security = "none"']
    for key, value in extra.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer(user=USER, password=PASSWORD) as server:
        yield server


@pytest.fixture
def imap() -> Iterator[IMAPTestServer]:
    # One account for both protocols, as with a real provider.
    with IMAPTestServer(user=USER, password=PASSWORD) as server:
        yield server


def _open(tmp_path: Path, db_url: str, smtp_port: int, imap: IMAPTestServer | None,
          password: str = PASSWORD, worker: str = "", **extra: Any) -> Workspace:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS,
                           worker + _toml(smtp_port, imap, **extra))
    ws = Workspace(root, database_url=db_url)
    ws.secrets.set("MAIL_PASSWORD", password, "person:test")
    ws.deploy("person:test")
    return ws


def _run(ws: Workspace, playbook: str, inputs: dict[str, Any] | None = None) -> str:
    run_id = ws.start(playbook, inputs or {})
    ws.worker().run(until_idle=True)
    return run_id


def _parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def _ids_in(imap: IMAPTestServer, folder: str = "Sent") -> list[str]:
    # A long Message-ID is folded onto its own line: unfolded, it keeps a leading space.
    return [str(_parsed(raw)["Message-ID"]).strip()
            for raw in imap.folder_messages(folder).values()]


def _moves(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    return [e.data for e in ws.log(run_id=run_id) if e.kind == "step.transition"]


def _intent(ws: Workspace, run_id: str) -> Any:
    [intent] = ws.show(run_id).intents
    return intent


# -- sending ------------------------------------------------------------------------------

def test_a_step_sends_one_message_under_its_derived_id_and_files_it_in_sent(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, imap) as ws:
        run_id = _run(ws, "notify", {"subject": "Hello"})
        assert ws.get_run(run_id).state == "done", ws.get_run(run_id).error
        expected = message_id_for(f"{run_id}/send/0", ADA)
        assert run_id in expected
        assert smtp_server.message_ids() == {expected: 1}
        [received] = smtp_server.messages
        assert received.rcpt_tos == ("bob@example.test", "carol@example.test")
        assert received.mail_from == SENDER
        parsed = _parsed(received.data)
        assert parsed["To"] == "Bob Stone <bob@example.test>"
        assert parsed["Subject"] == "Hello"
        assert _ids_in(imap) == [expected]
        intent = _intent(ws, run_id)
        assert intent.status == "dispatched"
        result = intent.result
        assert result["message_id"] == expected and result["accepted"] is True
        assert result["reply"].startswith("250 ") and result["reconciled"] is False
        assert isinstance(result["sent_folder_uid"], int)
        assert ws.show(run_id).steps[0].output == result
        send = ws.tools.get("mail.send")
        assert send.effect == "write" and "external-communication" in send.tags


def test_a_reply_threads_under_the_original_and_carries_its_attachment(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer) -> None:
    original = parse_message(
        b"From: Bob Stone <bob@example.test>\r\nTo: ada@example.test\r\n"
        b"Subject: The plan\r\nMessage-ID: <q2@example.test>\r\n"
        b"References: <q0@example.test> <q1@example.test>\r\n"
        b"In-Reply-To: <q1@example.test>\r\n\r\nSend me the plan?\r\n")
    message = original.model_dump(mode="json", by_alias=True)
    with _open(tmp_path, db_url, smtp_server.port, None) as ws:
        run_id = _run(ws, "answer", {"message": message})
        assert ws.get_run(run_id).state == "done", ws.get_run(run_id).error
        [received] = smtp_server.messages
        assert received.rcpt_tos == ("bob@example.test",)
        parsed = _parsed(received.data)
        assert parsed["Message-ID"].strip() == message_id_for(f"{run_id}/reply/0", ADA)
        assert parsed["In-Reply-To"] == "<q2@example.test>"
        assert parsed["References"] == "<q0@example.test> <q1@example.test> <q2@example.test>"
        assert parsed["Subject"] == "Re: The plan"
        [(attachment, content)] = attachment_contents(received.data)
        assert (attachment.name, attachment.content_type) == ("plan.pdf", "application/pdf")
        assert content == b"%PDF-1.4 \x00\xff binary plan"
        assert _intent(ws, run_id).result["sent_folder_uid"] is None  # no IMAP account


# -- receiving ----------------------------------------------------------------------------

def _mail(subject: str, message_id: str, *, in_reply_to: str | None = None,
          sender: str = "Bob <bob@example.test>") -> bytes:
    threading = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" \
        if in_reply_to else ""
    return (f"From: {sender}\r\nTo: {SENDER}\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id}\r\n{threading}"
            "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nThanks!\r\n").encode()


def test_received_mail_starts_a_playbook_that_knows_the_run_it_answers(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    imap.deliver(_mail("Re: old news", "<old@example.test>"))
    with _open(tmp_path, db_url, smtp_server.port, imap) as ws:
        sender = _run(ws, "notify", {"subject": "Hello"})
        sent = message_id_for(f"{sender}/send/0", ADA)
        # The first poll starts after the mail already there (read_existing is false).
        [first] = ws.sync_connector("mail")
        assert first.accepted == 0
        imap.deliver(_mail("Newsletter", "<news@example.test>"))
        imap.deliver(_mail("Re: Hello", "<answer@example.test>", in_reply_to=sent))
        [second] = ws.sync_connector("mail")
        assert (second.accepted, second.duplicates) == (2, 0)
        assert ws.sync_connector("mail")[0].accepted == 0  # each message once
        assert ws.scheduler("s").tick()["inbound"] == 2
        ws.worker().run(until_idle=True)
        [started] = ws.runs(playbook="on_reply")
        assert started.state == "done"
        assert started.inputs == {"run": sender, "subject": "Re: Hello"}
        [status] = ws.connector_status("mail")
        assert status.cursors["INBOX"]["last_uid"] > 0 and status.backlog.get("INBOX", 0) == 0


def _backlog(ws: Workspace) -> list[dict[str, Any]]:
    with ws.store.transaction() as tx:
        rows = tx.inbound.take_batch("mail:INBOX", 10)
    return [row.payload["payload"] for row in rows if row.payload["topic"] == "email.received"]


BROKEN = (b"From: J\xf6rg <joerg@example.test>\r\nTo: ada@example.test\r\n"
          b"Subject: Gr\xfc\xdfe\r\nMessage-ID: <broken@example.test>\r\n"
          b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
          b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nno end in sight\r\n")


def _big() -> bytes:
    message = email.message.EmailMessage()
    message["From"] = "bob@example.test"
    message["To"] = SENDER
    message["Subject"] = "the video"
    message["Message-ID"] = "<big@example.test>"
    message.set_content("Here it is.")
    message.add_attachment(b"\x00" * (20 * 1024 * 1024), maintype="video", subtype="mp4",
                           filename="talk.mp4")
    return message.as_bytes()


def test_broken_mime_and_a_20mb_attachment_become_events_that_say_what_was_wrong(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    imap.deliver(BROKEN)
    imap.deliver(_big())
    with _open(tmp_path, db_url, smtp_server.port, imap, read_existing=True) as ws:
        [report] = ws.sync_connector("mail")
        assert report.accepted == 2 and report.error is None
        broken, big = _backlog(ws)
        assert broken["message"]["message_id"] == "<broken@example.test>"
        assert broken["message"]["from"]["email"] == "joerg@example.test"
        assert broken["problems"] and broken["problems"] == broken["message"]["problems"]
        assert broken["reply_to_run"] is None
        [attachment] = big["message"]["attachments"]
        assert (attachment["name"], attachment["size"]) == ("talk.mp4", 20 * 1024 * 1024)
        assert len(repr(big)) < 100_000  # the bytes stay on the server
        assert big["message"]["text"].strip() == "Here it is."


def test_a_new_uidvalidity_starts_the_folder_over_under_new_delivery_ids(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with imap.client() as client:
        client.create_folder("Support")
    imap.deliver(_mail("first", "<f1@example.test>"), folder="Support")
    with _open(tmp_path, db_url, smtp_server.port, imap, read_existing=True,
               inbox_folder='"Support"') as ws:
        assert ws.sync_connector("mail")[0].accepted == 1
        with imap.client() as client:  # the folder is recreated: its UIDs start again
            client.delete_folder("Support")
            client.create_folder("Support")
        imap.deliver(_mail("first", "<f1@example.test>"), folder="Support")
        imap.deliver(_mail("second", "<f2@example.test>"), folder="Support")
        assert ws.sync_connector("mail")[0].accepted == 2
        with ws.store.transaction() as tx:
            rows = tx.inbound.take_batch("mail:Support", 10)
        ids = [row.delivery_id for row in rows]
        assert len(set(ids)) == 3 and len({i.split(":")[0] for i in ids}) == 2


def test_search_mark_seen_and_move_act_on_the_mailbox(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with imap.client() as client:
        client.create_folder("Archive")
    for n in range(3):
        imap.deliver(_mail(f"order {n}", f"<o{n}@example.test>",
                           sender="Carol <carol@example.test>"))
    imap.deliver(_mail("hello", "<h@example.test>"))
    with _open(tmp_path, db_url, smtp_server.port, imap) as ws:
        run_id = _run(ws, "tidy")
        assert ws.get_run(run_id).state == "done", ws.get_run(run_id).error
        found = ws.show(run_id).steps[0].output
        assert [f["message"]["subject"] for f in found] == ["order 2", "order 1", "order 0"]
        assert found[0]["message"]["from"]["email"] == "carol@example.test"
        assert [i.status for i in ws.show(run_id).intents] == ["dispatched", "dispatched"]
        with imap.client() as client:
            client.select_folder("INBOX", readonly=True)
            flags = client.get_flags(client.search("ALL"))
        seen = sorted(uid for uid, f in flags.items() if b"\\Seen" in f)
        assert seen == sorted(f["uid"] for f in found[1:])  # the first one moved
        [archived] = imap.folder_messages("Archive").values()
        assert b"<o2@example.test>" in archived
        # Both are idempotent: done again, nothing changes and nothing fails.
        call = ToolCall(run_id, "act", "again", str(ws.root))
        ws.tools.get("mail.move").invoke(
            {"uids": [found[0]["uid"]], "destination": "Archive"}, call)
        assert len(imap.folder_messages("Archive")) == 1


def test_the_connector_test_says_what_it_checked(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, imap) as ws:
        assert ws.test_connector("mail") == (
            f"logged in to SMTP 127.0.0.1:{smtp_server.port} as {USER} and to IMAP "
            f"127.0.0.1:{imap.port}, where the folder INBOX opens")


def test_the_example_policy_puts_an_email_behind_a_gate(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer) -> None:
    template = Path(soloist.__file__).parent / "templates" / "workspace" / "policies.yaml"
    with _open(tmp_path, db_url, smtp_server.port, None) as ws:
        shutil.copy(template, ws.root / "policies.yaml")
        ws.deploy("person:test")
        run_id = _run(ws, "notify", {"subject": "Hello"})
        [pending] = ws.approvals(run_id=run_id)
        assert smtp_server.messages == []
        ws.approve(pending.approval.id)
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done" and len(smtp_server.messages) == 1


# -- failures -----------------------------------------------------------------------------

def test_bad_arguments_are_refused_when_staged_naming_the_field(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, None) as ws:
        send = ws.tools.get("mail.send")
        assert send.validate({"to": "bob@example.test", "subject": "one address"})["to"] \
            == ("bob@example.test",)
        for args, field in (({"to": ["bob"], "subject": "x"}, "to[0]"),
                            ({"to": ["bob@example.test"], "subject": "a\nBcc: eve@x.org"},
                             "subject"),
                            ({"to": ["bob@example.test"], "subject": "x",
                              "attachments": [{"name": "a.txt", "content_base64": "%%"}]},
                             "attachments[0].content_base64")):
            with pytest.raises(DeterministicError, match=re.escape(f"'{field}'")):
                send.validate(args)
        with pytest.raises(InvalidPayload, match="no From or Reply-To"):
            ws.tools.get("mail.reply").invoke(
                {"message": {"subject": "anonymous"}, "text": "hi"},
                ToolCall("r", "s", "r/s/0", str(ws.root)))
        assert smtp_server.messages == []


def test_a_refused_message_is_not_left_transmitting(tmp_path: Path, db_url: str) -> None:
    with SMTPTestServer(user=USER, password=PASSWORD, reply_error="451 4.3.0 try later") \
            as busy, _open(tmp_path, db_url, busy.port, None) as ws:
        run_id = _run(ws, "notify", {"subject": "Hello"})
        # Refused twice at the end of DATA: each refusal put the intent back to pending,
        # so the retry sent again instead of asking a person about an unknown outcome.
        assert ws.get_run(run_id).state == "failed"
        assert [m["kind"] for m in _moves(ws, run_id) if m.get("kind")] == [
            "transient", "transient"]
        assert "451 4.3.0 try later" in (ws.get_run(run_id).error or "")
        assert ws.approvals(run_id=run_id) == [] and busy.messages == []


def test_what_fails_before_the_data_goes_out_sends_nothing(
        smtp_server: SMTPTestServer) -> None:
    draft = Draft(sender=ADA, to=(Contact(email="bob@example.test"),), subject="x")

    def refuse() -> None:
        raise DeterministicError("the store says no")

    with SMTPClient(smtp_server.host, smtp_server.port, username=USER, password=PASSWORD,
                    security="none", timeout=5) as client:
        with pytest.raises(DeterministicError, match="the store says no"):
            client.send(build(draft, "k/s/0"), SENDER, ["bob@example.test"],
                        before_data=refuse)
    with SMTPClient(smtp_server.host, smtp_server.port, username=USER, password=PASSWORD,
                    security="none", timeout=5) as client:
        client.send(build(draft, "k/s/1"), SENDER, ["bob@example.test"],
                    before_data=lambda: None)
    assert list(smtp_server.message_ids().values()) == [1]
    assert smtp_server.messages[0].message_id == message_id_for("k/s/1", ADA)


def test_bad_credentials_fail_the_step_with_one_sentence(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, None, password="wrong-password") as ws:
        run_id = _run(ws, "notify", {"subject": "Hello"})
        run = ws.get_run(run_id)
        sentence = (f"cannot log in to 127.0.0.1:{smtp_server.port} as sender@example.test: "
                    "authentication failed")
        assert run.state == "failed" and run.error == f"step send failed: {sentence}"
        assert [m["kind"] for m in _moves(ws, run_id) if m.get("kind")] == ["deterministic"]
        assert smtp_server.messages == [] and _intent(ws, run_id).status == "failed"
        with pytest.raises(DeterministicError) as refused:
            ws.test_connector("mail")
        assert str(refused.value) == sentence


def test_a_server_that_is_down_is_transient_and_sends_nothing(
        tmp_path: Path, db_url: str) -> None:
    port = free_port()
    with _open(tmp_path, db_url, port, None) as ws:
        run_id = _run(ws, "notify", {"subject": "Hello"})
        assert ws.get_run(run_id).state == "failed"
        kinds = [m["kind"] for m in _moves(ws, run_id) if m.get("kind")]
        assert kinds == ["transient", "transient"]  # retried once, then gave up
        assert f"cannot connect to 127.0.0.1:{port}" in (ws.get_run(run_id).error or "")


def test_a_server_too_slow_to_answer_is_transient_then_a_person_decides(
        tmp_path: Path, db_url: str) -> None:
    with SMTPTestServer(user=USER, password=PASSWORD, reply_delay=3.0) as slow:
        with _open(tmp_path, db_url, slow.port, None, timeout=0.5) as ws:
            run_id = _run(ws, "notify", {"subject": "Hello"})
            moves = [m for m in _moves(ws, run_id) if m.get("kind")]
            assert moves[0]["kind"] == "transient" and "may have been delivered" in \
                moves[0]["error"]
            # The retry cannot prove the outcome (no IMAP account): a person is asked.
            [pending] = ws.approvals(run_id=run_id)
            assert pending.approval.reason == "unconfirmed"
            assert "there is no IMAP account" in pending.approval.message
            assert slow.wait_for_messages(1) and len(slow.messages) == 1
            ws.resolve(pending.approval.id, "Bob got it")
            ws.worker().run(until_idle=True)
            assert ws.get_run(run_id).state == "done"
            assert len(slow.messages) == 1


# -- a send cut short ---------------------------------------------------------------------

def _cut_short(ws: Workspace) -> tuple[str, str]:
    """A run whose send was left ``transmitting``, as by a process killed mid-send."""
    run_id = _run(ws, "gated")
    [gate] = ws.approvals(run_id=run_id)
    ws.approve(gate.approval.id)
    key = f"{run_id}/send/0"
    with ws.store.transaction() as tx:
        assert tx.intents.mark(key, "transmitting", expect=["pending"], now=time.time())
    return run_id, message_id_for(key, ADA)


def test_a_send_cut_short_that_is_in_sent_is_recorded_and_not_sent_again(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, imap, rate=5) as ws:
        run_id, message_id = _cut_short(ws)
        # Filed as the connector files it (a provider may file what it relays, too).
        draft = Draft(sender=ADA, to=(Contact(email="bob@example.test"),), subject="Invoice")
        filed = build(draft, f"{run_id}/send/0")
        assert filed["Message-ID"] == message_id
        imap.deliver(filed.as_bytes(policy=filed.policy.clone(linesep="\r\n")), folder="Sent")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        result = _intent(ws, run_id).result
        assert result["reconciled"] is True and result["message_id"] == message_id
        assert result["sent_folder_uid"] in imap.folder_messages("Sent")
        assert smtp_server.messages == []
        # Proving it spent no turn of the rate limit; a send does.
        assert ws.connector_status("mail")[0].tokens is None
        _run(ws, "notify", {"subject": "Hello"})
        assert ws.connector_status("mail")[0].tokens is not None


def test_a_send_cut_short_that_cannot_be_proven_waits_for_a_person_who_sends_again(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, imap) as ws:
        run_id, message_id = _cut_short(ws)
        ws.worker().run(until_idle=True)
        [pending] = ws.approvals(run_id=run_id)
        message = pending.approval.message
        assert pending.approval.reason == "unconfirmed"
        assert message.startswith("the process stopped while this email")
        assert message_id in message and "bob@example.test" in message
        assert message.endswith("send again, or mark as sent?")
        assert [i.status for i in pending.intents] == ["staged"]
        assert smtp_server.messages == []
        ws.approve(pending.approval.id)
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert smtp_server.message_ids() == {message_id: 1}
        assert _ids_in(imap) == [message_id]


def test_a_send_cut_short_resolved_by_a_person_is_recorded_and_never_sent(
        tmp_path: Path, db_url: str, smtp_server: SMTPTestServer,
        imap: IMAPTestServer) -> None:
    with _open(tmp_path, db_url, smtp_server.port, imap) as ws:
        run_id, _ = _cut_short(ws)
        ws.worker().run(until_idle=True)
        [pending] = ws.approvals(run_id=run_id)
        ws.resolve(pending.approval.id, "Bob confirmed he has it")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert smtp_server.messages == [] and _intent(ws, run_id).status == "dispatched"


WORKER = """
import sys
from soloist.workspace import Workspace
with Workspace(sys.argv[1], database_url=sys.argv[2]) as ws:
    ws.worker().run()
"""


def test_a_worker_killed_inside_the_smtp_transaction_never_sends_twice_silently(
        tmp_path: Path, db_url: str, imap: IMAPTestServer) -> None:
    with SMTPTestServer(user=USER, password=PASSWORD) as smtp, \
            _open(tmp_path, db_url, smtp.port, imap,
                  worker="[worker]\nlease_seconds = 1\n") as ws:
        run_id = ws.start("notify", {"subject": "Hello"})
        key, message_id = f"{run_id}/send/0", message_id_for(f"{run_id}/send/0", ADA)
        smtp.hold_replies()
        sources = str(Path(soloist.__file__).parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [sources, *filter(None, [os.environ.get("PYTHONPATH")])])}
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen([sys.executable, "-c", WORKER, str(ws.root), db_url],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                # The whole message is at the server, which holds its 250: kill the sender.
                assert smtp.wait_for_messages(1, timeout=60), \
                    (tmp_path / "worker.log").read_text()
                worker.kill()
            finally:
                worker.kill()
                worker.wait()
        smtp.release_replies()
        with ws.store.read() as tx:
            intent = tx.intents.get(key)
        assert intent is not None and intent.status == "transmitting"
        while True:  # until the dead worker's lease runs out and a live one may take over
            with ws.store.read() as tx:
                step = tx.steps.get(run_id, "send")
            assert step is not None
            if step.lease_expires is None or step.lease_expires < time.time():
                break
            time.sleep(0.1)
        ws.worker().run(until_idle=True)
        [pending] = ws.approvals(run_id=run_id)
        assert pending.approval.reason == "unconfirmed"
        assert message_id in pending.approval.message
        assert "it is not in the folder Sent" in pending.approval.message
        assert smtp.message_ids() == {message_id: 1}
        ws.resolve(pending.approval.id, "Bob has it")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert smtp.message_ids() == {message_id: 1}
