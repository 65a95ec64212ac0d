"""Email as bytes: what is built parses back the same, the Message-ID comes from the intent
key, replies thread, and a corpus of broken mail parses with its problems noted, never an
exception."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from pydantic import ValidationError

from soloist.errors import InvalidPayload
from soloist.integrations.entities import Contact, Message, load
from soloist.integrations.mail.compose import (
    MAX_REFERENCES,
    Draft,
    FileAttachment,
    build,
    message_id_for,
    recipients,
    render,
    reply,
    reply_subject,
    run_of_message_id,
)
from soloist.integrations.mail.parse import (
    MAX_DEPTH,
    attachment_contents,
    parse_message,
)

ADA = Contact(name="Ada Lovelace", email="ada@example.com")
BOB = Contact(name='Bob "The Builder", Jr.', email="bob@example.org")
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))


def draft(**changes: object) -> Draft:
    fields: dict[str, object] = {
        "sender": ADA, "to": (BOB,), "cc": (Contact(name="Zoë Ünal", email="zoe@example.net"),),
        "bcc": (Contact(email="audit@example.com"),), "subject": "Grüße — the €200 invoice",
        "text": "Hello Bob,\nhere it is: 200 €.\n", "html": "<p>Hello Bob, <b>200 €</b></p>\n",
        "attachments": (
            FileAttachment(name="facture été.pdf", content_type="application/pdf",
                           content=b"%PDF-1.7\n" + bytes(range(256)) * 40),
            FileAttachment(name="notes.txt", content_type="text/plain", content=b"a\r\nb\n"),
        )}
    fields.update(changes)
    return Draft.model_validate(fields)


def mail(*lines: str | bytes, body: bytes = b"Hello.\r\n") -> bytes:
    """A raw message: header lines, a blank line, then ``body``."""
    head = b"".join((line.encode() if isinstance(line, str) else line) + b"\r\n"
                    for line in lines)
    return head + b"\r\n" + body


BASIC = ("From: Ada <ada@example.com>", "To: bob@example.org",
         "Date: Tue, 01 Dec 2026 10:00:00 +0000", "Message-ID: <m1@example.com>",
         "Subject: hello")


# -- building, and the round trip ----------------------------------------------------------


def test_what_is_built_parses_back_the_same() -> None:
    sent = draft()
    raw = build(sent, "run-1/step-2", date=WHEN).as_bytes()
    got = parse_message(raw)
    assert got.problems == ()
    assert got.message_id == message_id_for("run-1/step-2", ADA)
    assert (got.from_, got.to, got.cc) == (ADA, sent.to, sent.cc)
    assert got.bcc == ()  # Bcc travels in the envelope only
    assert (got.subject, got.date, got.text, got.html) == (sent.subject, WHEN, sent.text,
                                                           sent.html)
    assert [(a.name, a.content_type, a.size, a.sha256) for a in got.attachments] == [
        (a.name, a.content_type, len(a.content), hashlib.sha256(a.content).hexdigest())
        for a in sent.attachments]
    assert [data for _, data in attachment_contents(raw)] == [
        a.content for a in sent.attachments]


def test_the_built_message_is_smtp_ready() -> None:
    raw = build(draft(), "k", date=WHEN).as_bytes()
    assert raw.isascii()  # 7-bit: encoded words, RFC 2231 names, quoted-printable/base64
    assert b"\r\n" in raw and re.search(rb"[^\r]\n", raw) is None
    assert b"Bcc" not in raw and b"audit@example.com" not in raw
    assert recipients(draft()) == ["bob@example.org", "zoe@example.net", "audit@example.com"]


def test_the_message_id_comes_from_the_key_and_the_sender_domain() -> None:
    first = message_id_for("run-1/step-2", ADA)
    assert re.fullmatch(r"<soloist\.run-1\.[0-9a-f]{32}@example\.com>", first)
    assert message_id_for("run-1/step-2", Contact(email="other@EXAMPLE.com")) == first
    assert message_id_for("run-1/step-3", ADA) != first
    assert message_id_for("run-1/step-2", BOB).endswith("@example.org>")
    assert build(draft(), "run-1/step-2")["Message-ID"] == first
    # The id names the run that sends it (a key's first segment), for replies to find.
    assert run_of_message_id(first) == "run-1"
    assert run_of_message_id(message_id_for("r-18c2f4a9b10-ab12cd/send/0", ADA)) \
        == "r-18c2f4a9b10-ab12cd"
    assert re.fullmatch(r"<soloist\.[0-9a-f]{32}@example\.com>", message_id_for("k", ADA))
    assert message_id_for("r.1/s/0", ADA).startswith("<soloist.") \
        and run_of_message_id(message_id_for("r.1/s/0", ADA)) is None
    for other in (None, "", "<a@b>", "<soloist.r-1.nothex@x.org>", "<soloist.abc@x.org>"):
        assert run_of_message_id(other) is None
    # An internationalised domain goes into the id as its ASCII (punycode) form.
    assert message_id_for("k", Contact(email="z@exämple.com")).endswith("@xn--exmple-cua.com>")


def test_a_draft_needs_a_recipient_and_an_ascii_local_part() -> None:
    with pytest.raises(InvalidPayload, match="at least one recipient"):
        load(Draft, {"sender": ADA.model_dump(), "subject": "x"})
    with pytest.raises(InvalidPayload, match=r"to\[0\].*SMTPUTF8"):
        build(draft(to=(Contact(email="zoë@example.com"),)), "k")


# -- header injection -----------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("subject", "Invoice\r\nBcc: victim@example.com"),
    ("subject", "Invoice\nX-Evil: 1"),
    ("sender", {"name": "Ada\r\nBcc: victim@example.com", "email": "ada@example.com"}),
    ("to", [{"name": "Bob", "email": "bob@example.org\r\nBcc: victim@example.com"}]),
    ("attachments", [{"name": "a.pdf\r\nX-Evil: 1", "content": b"x"}]),
    ("in_reply_to", "<a@b>\r\nBcc: victim@example.com"),
])
def test_a_line_break_never_becomes_a_header(field: str, value: object) -> None:
    payload = {**draft().model_dump(), field: value}
    with pytest.raises(InvalidPayload) as caught:
        load(Draft, payload)
    assert caught.value.field.split("[")[0].split(".")[0] == field
    with pytest.raises(ValidationError):
        Draft.model_validate(payload)


def test_an_encoded_line_break_in_a_received_subject_stays_in_the_subject() -> None:
    raw = mail(*BASIC[:4], "Subject: =?utf-8?q?Invoice=0D=0ABcc:_victim@example.com?=")
    got = parse_message(raw)
    assert got.subject == "Invoice Bcc: victim@example.com"
    assert any(p.startswith("Subject: line breaks") for p in got.problems)
    answer = message_from_bytes(build(reply(got, BOB, text="ok"), "k").as_bytes(),
                                policy=policy.default)
    assert answer.get_all("Subject") == ["Re: Invoice Bcc: victim@example.com"]
    assert answer["Bcc"] is None and answer.get_all("To") == ["Ada <ada@example.com>"]


def test_quotes_commas_and_angle_brackets_in_names_survive() -> None:
    odd = Contact(name='O\'Brien, "Ops" <team>', email="ops@example.org")
    got = parse_message(build(draft(to=(odd,)), "k").as_bytes())
    assert got.to == (odd,)


# -- replies ----------------------------------------------------------------------------------


def test_a_reply_threads_under_the_original() -> None:
    original = parse_message(mail(
        "From: Bob <bob@example.org>", "Reply-To: Billing <billing@example.org>",
        "To: Ada <ada@example.com>, Carol <carol@example.net>", "Cc: ADA@example.com",
        "Date: Tue, 01 Dec 2026 10:00:00 +0000", "Message-ID: <m3@example.org>",
        "In-Reply-To: <m2@example.com>", "References: <m1@example.org> <m2@example.com>",
        "Subject: Re: the invoice"))
    answer = reply(original, ADA, text="Paid.", everyone=True)
    assert answer.to == (Contact(name="Billing", email="billing@example.org"),)
    assert answer.cc == (Contact(name="Carol", email="carol@example.net"),)  # never Ada
    assert answer.subject == "Re: the invoice"
    got = parse_message(build(answer, "run-9/step-1").as_bytes())
    assert got.in_reply_to == "<m3@example.org>"
    assert got.references == ("<m1@example.org>", "<m2@example.com>", "<m3@example.org>")
    assert got.problems == ()


def test_a_reply_to_a_message_with_only_in_reply_to_starts_its_references_there() -> None:
    original = Message(message_id="<b@x>", in_reply_to="<a@x>", subject="hi",
                       from_=BOB)
    assert reply(original, ADA).references == ("<a@x>", "<b@x>")
    assert reply_subject("RE: hi") == "RE: hi" and reply_subject("") == "Re:"


def test_a_long_thread_keeps_its_first_and_latest_references() -> None:
    ids = tuple(f"<m{i}@x>" for i in range(50))
    original = Message(message_id="<m50@x>", references=ids, from_=BOB)
    kept = reply(original, ADA).references
    assert len(kept) == MAX_REFERENCES
    assert kept[0] == "<m0@x>" and kept[-1] == "<m50@x>"


@pytest.mark.parametrize("html", [None, "<p>Paid.</p>"])
def test_long_message_ids_are_written_as_they_are_never_as_encoded_words(
        html: str | None) -> None:
    # Gmail's ids are often longer than a header line: the email package alone would write
    # them as RFC 2047 encoded words, which no client threads on.
    long = f"<CAF{'x' * 70}@mail.gmail.com>"
    thread = tuple(f"<m{i}.{'y' * 30}@example.org>" for i in range(6))
    draft = Draft(sender=ADA, to=(BOB,), subject="Re: the brief", text="Paid.", html=html,
                  in_reply_to=long, references=(*thread, long))
    data = render(draft, "run-9/step-1").data
    assert b"=?" not in data
    assert f"In-Reply-To: {long}\r\n".encode() in data
    head = data.split(b"\r\n\r\n")[0].decode()
    lines = head[head.index("References:"):].split("\r\n")
    folded = [lines[0], *(line for line in lines[1:8] if line.startswith(" "))]
    assert len(folded) == 7 and all(len(line) <= 78 for line in folded[:-1])
    assert folded[-1] == f" {long}"  # one id longer than a line stays whole
    got = parse_message(data)
    assert got.in_reply_to == long and got.references == (*thread, long)
    assert got.message_id == message_id_for("run-9/step-1", ADA)


def test_an_id_that_cannot_be_written_in_7_bit_is_left_out_of_the_thread() -> None:
    draft = Draft(sender=ADA, to=(BOB,), subject="Re: hi", text="ok",
                  in_reply_to="<zoë@example.org>", references=("<a@x>", "<zoë@example.org>"))
    got = parse_message(render(draft, "k").data)
    assert got.in_reply_to is None and got.references == ("<a@x>",)


def test_a_message_with_no_one_to_answer_cannot_be_replied_to() -> None:
    with pytest.raises(InvalidPayload, match="no From or Reply-To"):
        reply(Message(message_id="<a@x>"), ADA)


# -- render: the direct path writes what the email package writes ------------------------------

#: each field is plain (first entry) nine times in ten, else one of the awkward ones
_NAMES = [["", "Ada", "Ada Lovelace", "O'Neil"],
          ["Bob B.", 'Bob "B"', "Zoë", "=?utf-8?q?x?=", "a  b", " Ada", "x" * 70]]
_LOCALS = [["ada", "a.b+tag", "o'neil"], ["a..b", "zoë", "x" * 60]]
_DOMAINS = [["example.com", "Example.ORG", "mail.example.co.uk"], ["bücher.example"]]
_SUBJECTS = [["Update 1", "Re: your brief", "50% off; (really) <now>"],
             ["", "two  spaces", " leading", "trailing ", "=?utf-8?q?hi?=", "Grüße",
              "tab\there", "s" * 80]]
_TEXTS = [["", "one line", "two\nlines\n", "crlf\r\nlines", "cr\ronly", "\n\nblank first",
           ".leading dot\n..two", "x" * 78, "end\n\n"],
          ["é accent", "y" * 79, "tab\tinside"]]


def _pick(rng: random.Random, choices: list[list[str]]) -> str:
    return rng.choice(choices[0] if rng.random() < 0.9 else choices[1])


def _contact(rng: random.Random) -> Contact:
    return Contact(name=_pick(rng, _NAMES),
                   email=f"{_pick(rng, _LOCALS)}@{_pick(rng, _DOMAINS)}")


def _varied_drafts(count: int) -> list[Draft]:
    rng = random.Random(20261201)
    drafts = []
    for _ in range(count):
        ids = [f"<m{i}.{rng.randrange(10**6)}{'x' * rng.choice([0, 0, 70])}@example.com>"
               for i in range(rng.choice([0, 0, 0, 1, 2, 25]))]
        drafts.append(Draft(
            sender=_contact(rng),
            to=tuple(_contact(rng) for _ in range(rng.choice([1, 1, 1, 2, 4]))),
            cc=tuple(_contact(rng) for _ in range(rng.choice([0, 0, 0, 1]))),
            bcc=tuple(_contact(rng) for _ in range(rng.choice([0, 0, 1]))),
            reply_to=tuple(_contact(rng) for _ in range(rng.choice([0, 0, 0, 1]))),
            subject=_pick(rng, _SUBJECTS), text=_pick(rng, _TEXTS),
            html=rng.choice([None] * 9 + ["<p>hi</p>"]),
            in_reply_to=ids[-1] if ids else None, references=tuple(ids[:-1])))
    return drafts


def _unbounded(data: bytes) -> bytes:
    """The message with its (random) multipart boundaries made one."""
    return re.sub(rb"={15}\d+==", b"=BOUNDARY=", data)


def test_render_writes_the_bytes_the_email_package_writes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import soloist.integrations.mail.compose as compose

    built = []

    def counted(draft: Draft, key: str, *, date: datetime | None = None) -> object:
        built.append(key)
        return build(draft, key, date=date)

    monkeypatch.setattr(compose, "build", counted)
    rendered = 0
    for i, draft in enumerate(_varied_drafts(800)):
        key = f"r-{i}/step/0"
        try:
            expected = build(draft, key, date=WHEN).as_bytes(policy=policy.SMTP.clone(
                cte_type="7bit", linesep="\r\n"))
        except InvalidPayload as error:
            with pytest.raises(InvalidPayload, match=re.escape(str(error))):
                render(draft, key, date=WHEN)
            continue
        outgoing = render(draft, key, date=WHEN)
        rendered += 1
        assert _unbounded(outgoing.data) == _unbounded(expected), draft
        assert outgoing.message_id == message_id_for(key, draft.sender)
    # both paths were exercised, each on a good share of the drafts
    assert len(built) > 100 and rendered - len(built) > 100, (rendered, len(built))


def test_a_plain_message_is_rendered_without_the_email_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import soloist.integrations.mail.compose as compose

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the plain message went through the email package")

    monkeypatch.setattr(compose, "build", refuse)
    outgoing = render(Draft(sender=ADA, to=(Contact(email="c1@example.test"),),
                            subject="Update 1", text="Your project moved on."), "r-1/s/0")
    assert outgoing.data.startswith(b"Message-ID: <soloist.r-1.")
    assert outgoing.data.endswith(b"\r\n\r\nYour project moved on.\r\n")


# -- a corpus of broken mail ------------------------------------------------------------------

LATIN1 = "Grüße aus Köln, déjà vu".encode("latin-1")
CORPUS: dict[str, tuple[bytes, list[str]]] = {
    "a boundary that never comes": (mail(
        *BASIC, 'Content-Type: multipart/mixed; boundary="expected"',
        body=b"--other\r\nContent-Type: text/plain\r\n\r\nstill here\r\n--other--\r\n"),
        ["start boundary was never found", "broken boundary"]),
    "no closing boundary": (mail(
        *BASIC, 'Content-Type: multipart/mixed; boundary="b"',
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"),
        ["close boundary"]),
    "an 8-bit From": (mail(
        "From: J\xc3\xb6rg M\xc3\xbcller <joerg@example.de>".encode("latin-1"),
        *BASIC[1:]), ["From: raw 8-bit bytes in the header, read as UTF-8"]),
    "an 8-bit Latin-1 subject": (mail(*BASIC[:4], b"Subject: K\xf6ln"),
                                 ["Subject: raw 8-bit bytes in the header, read as "
                                  "Windows-1252"]),
    "a Latin-1 body labelled UTF-8": (mail(
        *BASIC, 'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit", body=LATIN1),
        ["text/plain: not valid utf-8 as labelled; read as Windows-1252"]),
    "a charset no codec knows": (mail(
        *BASIC, "Content-Type: text/plain; charset=x-klingon", body="Grüße".encode()),
        ["unknown charset 'x-klingon'; read as UTF-8"]),
    "no Date": (mail(*(line for line in BASIC if not line.startswith("Date"))),
                ["no Date header"]),
    "a Date that is not one": (mail(*BASIC[:2], "Date: next Tuesday", *BASIC[3:]),
                               ["Date: "]),
    "a Date with no zone": (mail(*BASIC[:2], "Date: Tue, 01 Dec 2026 10:00:00 -0000",
                                 *BASIC[3:]), ["Date: no time zone; read as UTC"]),
    "no Message-ID": (mail(*BASIC[:3], BASIC[4]), ["no Message-ID"]),
    "a Message-ID that is not one": (mail(*BASIC[:3], "Message-ID: what ever", BASIC[4]),
                                     ["holds no <message-id>", "no Message-ID"]),
    "a Message-ID without brackets": (
        mail(*BASIC[:3], "Message-ID: m1@example.com", BASIC[4]),
        ["no angle brackets; read as <m1@example.com>"]),
    "no From": (mail(*BASIC[1:]), ["no From address"]),
    "addresses that are not": (mail(
        BASIC[0], "To: root, <bad@@x>, \"Ok\" <ok@example.org>", *BASIC[2:]),
        ["'root' is not an email address; left out"]),
    "two subjects": (mail(*BASIC, "Subject: again"), ["Subject appears 2 times"]),
    "a header line without a colon": (mail(*BASIC, "this is not a header"),
                                      ["no leading whitespace and no colon"]),
    "broken base64": (mail(
        *BASIC, 'Content-Type: multipart/mixed; boundary="b"', body=(
            b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
            b"Content-Type: application/pdf; name=a.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBER i0x=Lj*c\r\n--b--\r\n")),
        ["application/pdf: "]),
    "a file name in an unknown charset": (mail(
        *BASIC, 'Content-Type: multipart/mixed; boundary="b"', body=(
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename*=x-klingon''%E9t%E9.bin\r\n\r\n"
            b"data\r\n--b--\r\n")), ["could not be decoded"]),
    "8-bit names and parameters in a part": (mail(
        *BASIC, 'Content-Type: multipart/mixed; boundary="b"', body=(
            b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
            b"filename=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n\r\nxx\r\n--b\r\n"
            b"Content-Type: te\xe9xt/pl; charset=\"\xe9\"\r\n\r\nhi\r\n--b--\r\n")),
        ["application/pdf: raw 8-bit bytes in its Content-Disposition header",
         "'te\ufffdxt/pl' is not a MIME type; read as application/octet-stream"]),
    "nested too deep": (mail(*BASIC, 'Content-Type: multipart/mixed; boundary="b0"', body=(
        b"".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\r\n\r\n"
                 .encode() for i in range(MAX_DEPTH + 5)) + b"--end\r\n")),
        [f"nested deeper than {MAX_DEPTH} levels"]),
    "empty": (b"", ["no Message-ID", "no From address", "no Date header"]),
    "binary noise": (bytes(range(256)) * 64, ["no From address"]),
    "control characters everywhere": (mail(
        *BASIC[:4], b"Subject: a\x00b\x07c", b"X-Mailer: \xff\xfe",
        body=b"\x00\x01\x02 text \xff"), ["Subject: line breaks or control characters",
                                         "text/plain: NUL or lone surrogate characters"]),
    "a codec that is not a text encoding": (mail(
        *BASIC, "Content-Type: text/plain; charset=base64", body=b"aGk="),
        ["cannot be decoded as base64"]),
    "a codec that makes lone surrogates": (mail(
        *BASIC, "Content-Type: text/plain; charset=unicode_escape", body=b"a\\ud800b"),
        ["NUL or lone surrogate characters replaced"]),
    "a very long subject": (mail(*BASIC[:4], "Subject: " + "word " * 2000),
                            ["Subject: 9999 characters; cut to the first 2000"]),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_broken_mail_parses_with_its_problems_noted(name: str) -> None:
    raw, expected = CORPUS[name]
    got = parse_message(raw)
    assert isinstance(got, Message)
    for words in expected:
        assert any(words in problem for problem in got.problems), (words, got.problems)
    for problem in got.problems:
        assert "\n" not in problem and problem.strip() == problem
    assert load(Message, got.model_dump(mode="json", by_alias=True)) == got
    attachment_contents(raw)  # reading the bytes back does not raise either


def test_mangled_mail_never_raises() -> None:
    """Seeded random damage (bytes changed, MIME syntax inserted, runs cut out) to good and
    broken mail: every result is a Message that survives its own JSON round trip."""
    seeds = [build(draft(), "k").as_bytes(), *(raw for raw, _ in CORPUS.values())]
    rng = random.Random(11)
    for _ in range(300):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 12)):
            at = rng.randrange(len(raw) + 1)
            roll = rng.random()
            if roll < 0.4 and raw:
                raw[min(at, len(raw) - 1)] = rng.choice(b'\r\n:;=?"<>@\x00\xff\xe9-')
            elif roll < 0.7:
                raw[at:at] = rng.choice([b"\r\n", b"=?utf-8?q?=0A?=", b"--b", b"\xc3",
                                         b"boundary=", b"charset=x-y", b"filename*=", b"''"])
            else:
                del raw[at:at + rng.randint(1, 40)]
        got = parse_message(bytes(raw))
        assert not got.problems or not got.problems[0].startswith("the message cannot be")
        assert load(Message, json.loads(got.model_dump_json(by_alias=True))) == got
        assert len(attachment_contents(bytes(raw))) == len(got.attachments)


def test_what_can_be_read_of_broken_mail_is_kept() -> None:
    assert parse_message(CORPUS["an 8-bit From"][0]).from_ == Contact(
        name="Jörg Müller", email="joerg@example.de")
    assert parse_message(CORPUS["an 8-bit Latin-1 subject"][0]).subject == "Köln"
    assert parse_message(CORPUS["a Latin-1 body labelled UTF-8"][0]).text == (
        "Grüße aus Köln, déjà vu")
    assert parse_message(CORPUS["a charset no codec knows"][0]).text == "Grüße"
    assert parse_message(CORPUS["a boundary that never comes"][0]).text.startswith("--other")
    assert parse_message(CORPUS["a Date with no zone"][0]).date == datetime(
        2026, 12, 1, 10, tzinfo=UTC)
    assert parse_message(CORPUS["no Date"][0]).date is None
    assert parse_message(CORPUS["a Message-ID without brackets"][0]).message_id == (
        "<m1@example.com>")
    assert [c.email for c in parse_message(CORPUS["addresses that are not"][0]).to] == [
        "ok@example.org"]
    assert parse_message(CORPUS["two subjects"][0]).subject == "hello"
    broken = parse_message(CORPUS["broken base64"][0])
    assert broken.text == "see attached"
    assert [(a.name, a.content_type) for a in broken.attachments] == [
        ("a.pdf", "application/pdf")]
    assert parse_message(CORPUS["a file name in an unknown charset"][0]).attachments[0].size
    eight_bit = parse_message(CORPUS["8-bit names and parameters in a part"][0])
    assert [(a.name, a.content_type) for a in eight_bit.attachments] == [
        ("résumé.pdf", "application/pdf"), ("", "application/octet-stream")]


def test_nested_multiparts_and_a_forwarded_message() -> None:
    forwarded = mail(*BASIC[:3], "Message-ID: <inner@example.com>", "Subject: inner",
                     body=b"the forwarded text\r\n")
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    raw = mail(*BASIC, 'Content-Type: multipart/mixed; boundary="outer"', body=b"".join([
        b"--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n",
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain \xe2\x82\xac\r\n",
        b"--alt\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n",
        b"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n",
        b"--rel\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n", base64.encodebytes(png), b"--rel--\r\n",
        b"--alt--\r\n",
        b"--outer\r\nContent-Type: message/rfc822\r\n\r\n", forwarded, b"\r\n--outer--\r\n"]))
    got = parse_message(raw)
    assert got.problems == ()
    assert (got.text, got.html) == ("plain €", "<p>html</p>")  # a boundary owns its CRLF
    assert [a.content_type for a in got.attachments] == ["image/png", "message/rfc822"]
    assert got.attachments[0].sha256 == hashlib.sha256(png).hexdigest()
    inner = parse_message(attachment_contents(raw)[1][1])
    assert (inner.message_id, inner.subject) == ("<inner@example.com>", "inner")


def test_a_20_mb_attachment_is_a_size_and_a_hash() -> None:
    content = os.urandom(20 * 1024 * 1024)
    raw = build(draft(attachments=(FileAttachment(name="big.bin", content=content),)),
                "k").as_bytes()
    got = parse_message(raw)
    assert got.problems == ()
    (attachment,) = got.attachments
    assert attachment.size == len(content)
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert len(got.model_dump_json()) < 10_000  # the bytes stay out of the event


@pytest.mark.parametrize("value", [
    "ada@example.org",
    "Ada Lovelace <ada@example.org>",
    "Ada  Lovelace   <ada@example.org>, bob@example.org,Carol <c.d+x@mail.example.co.uk>",
    "  <ada@example.org>  ",
    "Ada <ada@xn--bcher-kva.example>",
])
def test_a_simple_address_list_reads_as_the_address_parser_reads_it(value: str) -> None:
    from email.message import Message as RawMessage

    from soloist.integrations.mail.parse import _Reader, simple_addresses

    raw = RawMessage()
    raw["To"] = value
    assert simple_addresses(value) is not None
    assert simple_addresses(value) == _Reader(raw).parsed_contacts("To")


@pytest.mark.parametrize("value", [
    '"Lovelace, Ada" <ada@example.org>', "Ada (the countess) <ada@example.org>",
    "=?utf-8?q?Ad=C3=A0?= <ada@example.org>", "friends: ada@example.org;", "not an address",
])
def test_anything_less_simple_is_left_to_the_address_parser(value: str) -> None:
    from soloist.integrations.mail.parse import simple_addresses

    assert simple_addresses(value) is None
