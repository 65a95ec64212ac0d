"""An outgoing email, built from a :class:`Draft` and the intent's idempotency key.

SMTP cannot deduplicate, so the message itself carries its identity: the Message-ID is
``<soloist.{run}.{hash}@{domain}>``, the run that sends it and a hash of the idempotency
key at the sender's domain (:func:`message_id_for`). Sending the same intent twice gives
the same Message-ID, which is what lets the connector look a send up in the Sent folder
after a crash; a reply's ``In-Reply-To`` names the run that sent the original
(:func:`run_of_message_id`), with no table to look it up in.

A draft is validated like any entity (no header value holds a line break, there is a
recipient); :func:`build` returns an ``EmailMessage`` under ``policy.SMTP`` (CRLF line
ends, 7-bit bodies) whose non-ASCII subjects, names and file names are encoded as RFC 2047
and RFC 2231 say. :func:`render` gives the bytes a send puts on the wire. Most messages a
playbook sends are plain: ASCII text in short lines, to plain addresses. Those are written
directly, because parsing each header back and folding it again costs more than the rest
of a send's bookkeeping; a unit test holds the direct writing to the very bytes the email
package writes, and anything the direct path does not cover goes through the package.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy, utils
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Self

from pydantic import Field, model_validator

from soloist.errors import InvalidPayload
from soloist.integrations.entities import Contact, Entity, Line, Message, MessageId

#: a reply keeps the thread's first id and its latest ones: some servers refuse very long
#: headers, and clients thread on those ends (RFC 5322 3.6.4 allows trimming the middle)
MAX_REFERENCES = 20
_HASH_DIGITS = 32  # 128 bits of the key's SHA-256: no two keys meet
#: a run id as it may appear in a Message-ID's left part (``r-18c2f4a9b10-ab12cd``)
_RUN = re.compile(r"[A-Za-z0-9-]{1,64}")
_OURS = re.compile(rf"<soloist\.([A-Za-z0-9-]{{1,64}})\.[0-9a-f]{{{_HASH_DIGITS}}}@[^<>\s]+>")
#: bodies go out as quoted-printable or base64, so a server without 8BITMIME takes them too
_POLICY = policy.SMTP.clone(cte_type="7bit")
_WIRE = _POLICY.clone(linesep="\r\n")
_LINE = _POLICY.max_line_length or 78  # the longest line the email package leaves unfolded
#: what the direct path writes as it is: words of printable ASCII, one space apart
_WORDS = re.compile(r"[!-~]+(?: [!-~]+)*")
#: a display name that needs no quoting (RFC 5322 atext words)
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PRINTABLE_ID = re.compile(r"<[!-;=?-~]+>")
_PLAIN_BODY = (b'Content-Type: text/plain; charset="utf-8"\r\n'
               b"Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\n")


class FileAttachment(Entity):
    """A file to send: its bytes and what to call it."""

    name: Line = Field(min_length=1)
    content_type: Line = "application/octet-stream"
    content: bytes = Field(repr=False)


class Draft(Entity):
    """What a playbook asks to send. ``in_reply_to`` and ``references`` thread it; build
    one with :func:`reply` rather than by hand."""

    sender: Contact
    to: tuple[Contact, ...] = ()
    cc: tuple[Contact, ...] = ()
    bcc: tuple[Contact, ...] = ()
    reply_to: tuple[Contact, ...] = ()
    subject: Line = ""
    text: str = ""
    html: str | None = None
    attachments: tuple[FileAttachment, ...] = ()
    in_reply_to: MessageId | None = None
    references: tuple[MessageId, ...] = ()

    @model_validator(mode="after")
    def _has_a_recipient(self) -> Self:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("a message needs at least one recipient (to, cc or bcc)")
        return self


def _ascii_domain(email: str) -> str:
    domain = email.rpartition("@")[2].lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidPayload(f"the sender's domain {domain!r} is not a valid domain name",
                             entity="Draft", field="sender.email") from None


def message_id_for(key: str, sender: Contact) -> str:
    """The Message-ID of the message an intent sends: the same key and sender always give
    the same id, different keys different ones. A key shaped ``run/step/index`` puts its
    run in the id too (see :func:`run_of_message_id`)."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:_HASH_DIGITS]
    run, slash, _ = key.partition("/")
    left = f"{run}.{digest}" if slash and _RUN.fullmatch(run) else digest
    return f"<soloist.{left}@{_ascii_domain(sender.email)}>"


def run_of_message_id(message_id: str | None) -> str | None:
    """The run that sent the message ``message_id`` names (with its angle brackets), when
    Soloist made that id; ``None`` for any other id."""
    if not message_id:
        return None
    found = _OURS.fullmatch(message_id.strip())
    return found.group(1) if found else None


def reply_subject(subject: str) -> str:
    """``Re: subject``, without piling up ``Re: Re:``."""
    return subject if subject[:3].lower() == "re:" else f"Re: {subject}".rstrip()


def _trimmed(references: tuple[str, ...]) -> tuple[str, ...]:
    if len(references) <= MAX_REFERENCES:
        return references
    return (references[0], *references[-(MAX_REFERENCES - 1):])


def reply(original: Message, sender: Contact, *, text: str = "", html: str | None = None,
          attachments: tuple[FileAttachment, ...] = (), everyone: bool = False) -> Draft:
    """A draft answering ``original``: to its Reply-To (or From), ``Re:`` its subject,
    threaded under it. ``everyone`` also copies its other recipients (reply all), never
    the sender themself."""
    to = original.reply_to or ((original.from_,) if original.from_ else ())
    cc: tuple[Contact, ...] = ()
    if everyone:
        skip = {sender.email.lower(), *(c.email.lower() for c in to)}
        seen: set[str] = set()
        kept = []
        for contact in (*original.to, *original.cc):
            address = contact.email.lower()
            if address not in skip and address not in seen:
                seen.add(address)
                kept.append(contact)
        cc = tuple(kept)
    if not to:
        raise InvalidPayload("the message has no From or Reply-To to answer",
                             entity="Message", field="from")
    return Draft(sender=sender, to=to, cc=cc, subject=reply_subject(original.subject),
                 text=text, html=html, attachments=attachments,
                 in_reply_to=original.message_id, references=_trimmed(original.thread))


def _address(contact: Contact, field: str) -> Address:
    local, _, domain = contact.email.rpartition("@")
    if not local.isascii():
        # The stdlib would need SMTPUTF8 end to end; refuse here rather than at the server.
        raise InvalidPayload(f"{field}: {contact.email!r} has a non-ASCII local part, which "
                             "needs SMTPUTF8", entity="Draft", field=field)
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidPayload(f"{field}: {contact.email!r} has an invalid domain",
                             entity="Draft", field=field) from None
    return Address(display_name=contact.name, username=local, domain=domain)


def build(draft: Draft, key: str, *, date: datetime | None = None) -> EmailMessage:
    """The message ``draft`` describes, under the Message-ID derived from ``key``.

    ``date`` (aware) defaults to now; Bcc recipients are not written into the message (the SMTP
    envelope carries them: see :func:`recipients`).
    """
    message = EmailMessage(policy=_POLICY)
    message["Message-ID"] = Ids("Message-ID", (message_id_for(key, draft.sender),))
    message["Date"] = utils.format_datetime(date or datetime.now(UTC))
    message["From"] = _address(draft.sender, "sender")
    for header, field in (("To", "to"), ("Cc", "cc"), ("Reply-To", "reply_to")):
        contacts: tuple[Contact, ...] = getattr(draft, field)
        if contacts:
            message[header] = [_address(c, f"{field}[{i}]") for i, c in enumerate(contacts)]
    for i, contact in enumerate(draft.bcc):
        _address(contact, f"bcc[{i}]")  # refused now rather than by the server later
    message["Subject"] = draft.subject
    in_reply_to, references = _threading(draft)
    if in_reply_to:
        message["In-Reply-To"] = Ids("In-Reply-To", in_reply_to)
    if references:
        message["References"] = Ids("References", references)
    message.set_content(draft.text)
    if draft.html is not None:
        message.add_alternative(draft.html, subtype="html")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not subtype or maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=attachment.name)
    return message


def _threading(draft: Draft) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ids of In-Reply-To and References. An id of anything but printable ASCII (a
    received message may have one) cannot go into a 7-bit header and is left out: the
    reply goes, threaded by the ids that can be written."""
    replied = (draft.in_reply_to,) if draft.in_reply_to else ()
    references = _trimmed(draft.references or replied)
    return (tuple(i for i in replied if _PRINTABLE_ID.fullmatch(i)),
            tuple(i for i in references if _PRINTABLE_ID.fullmatch(i)))


class Ids(str):
    """A header of message ids (Message-ID, In-Reply-To, References) as the email package
    takes a header it need not parse: the ids written as they are, folded between ids. The
    package would write a long id (Gmail's often are) as RFC 2047 encoded words, and no
    client threads on those."""

    name: str
    ids: tuple[str, ...]

    def __new__(cls, name: str, ids: tuple[str, ...]) -> Self:
        header = super().__new__(cls, " ".join(ids))
        header.name, header.ids = name, ids
        return header

    def fold(self, *, policy: policy.Policy) -> str:
        return _id_lines(self.name, self.ids, policy.linesep)


def _id_lines(name: str, ids: tuple[str, ...], linesep: str) -> str:
    """``name: id id ...``, a new line begun where the next id would pass the line length
    (a first id longer than that stays on the first line: there is nothing to fold)."""
    lines = [f"{name}:"]
    for i, message_id in enumerate(ids):
        if i and len(lines[-1]) + 1 + len(message_id) > _LINE:
            lines.append("")
        lines[-1] += f" {message_id}"
    return linesep.join(lines) + linesep


@dataclass(frozen=True)
class Outgoing:
    """A message as it goes out: its Message-ID (``""`` without one) and its bytes (CRLF
    line ends)."""

    message_id: str
    data: bytes

    @classmethod
    def of(cls, message: EmailMessage) -> Self:
        found = message["Message-ID"]
        return cls("" if found is None else str(found).strip(),
                   message.as_bytes(policy=_WIRE))


def render(draft: Draft, key: str, *, date: datetime | None = None) -> Outgoing:
    """The bytes :func:`build` would give for ``draft``, written directly when the message
    is plain (see the module's docstring)."""
    message_id = message_id_for(key, draft.sender)
    data = _plain(draft, message_id, date or datetime.now(UTC))
    if data is None:
        return Outgoing.of(build(draft, key, date=date))
    return Outgoing(message_id, data)


def _plain(draft: Draft, message_id: str, date: datetime) -> bytes | None:
    """The message's bytes when every header and line is one the email package would
    write unchanged; ``None`` for anything else."""
    if draft.html is not None or draft.attachments or not _WORDS.fullmatch(draft.subject):
        return None
    try:
        body = draft.text.encode("ascii").splitlines()
    except UnicodeEncodeError:
        return None
    if any(len(line) > _LINE for line in body):
        return None
    lines: list[tuple[str, str | None]] = [
        ("Date", utils.format_datetime(date)),
        ("From", _plain_addresses((draft.sender,), "sender"))]
    for header, field in (("To", "to"), ("Cc", "cc"), ("Reply-To", "reply_to")):
        contacts: tuple[Contact, ...] = getattr(draft, field)
        if contacts:
            lines.append((header, _plain_addresses(contacts, field)))
    for i, contact in enumerate(draft.bcc):
        _address(contact, f"bcc[{i}]")
    lines.append(("Subject", draft.subject))
    head = [_id_lines("Message-ID", (message_id,), "\r\n")]
    for name, value in lines:
        line = f"{name}: {value}"
        # "=?" could be read as an encoded word; a long line would be folded.
        if (value is None or "=?" in value or len(line) > _LINE
                or not _WORDS.fullmatch(value)):
            return None
        head.append(line + "\r\n")
    in_reply_to, references = _threading(draft)
    if in_reply_to:
        head.append(_id_lines("In-Reply-To", in_reply_to, "\r\n"))
    if references:
        head.append(_id_lines("References", references, "\r\n"))
    text = b"\r\n".join(body) + b"\r\n" if body else b"\r\n"
    return "".join(head).encode("ascii") + _PLAIN_BODY + text


def _plain_addresses(contacts: tuple[Contact, ...], field: str) -> str | None:
    """The addresses as the header's value, or ``None`` if one is not plain; every one is
    checked as :func:`build` checks it, so both refuse the same draft with the same error."""
    written: list[str] | None = []
    for i, contact in enumerate(contacts):
        address = _address(contact, field if field == "sender" else f"{field}[{i}]")
        spec = f"{address.username}@{address.domain}"
        plain = _DOT_ATOM.fullmatch(address.username) and _WORDS.fullmatch(spec) and (
            not address.display_name or _ATOMS.fullmatch(address.display_name))
        if written is not None and plain:
            written.append(f"{address.display_name} <{spec}>" if address.display_name
                           else spec)
        else:
            written = None
    return None if written is None else ", ".join(written)


def recipients(draft: Draft) -> list[str]:
    """The SMTP envelope's recipients: To, Cc and Bcc, each once, in that order."""
    seen: dict[str, None] = {}
    for contact in (*draft.to, *draft.cc, *draft.bcc):
        seen.setdefault(contact.email, None)
    return list(seen)
