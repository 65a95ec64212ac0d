"""The email connector: send and reply over SMTP, exactly once; read, search, mark and move
over IMAP; new mail in the inbox becomes ``email.received`` events.

For a connector named ``mail`` the tools are ``mail.send``, ``mail.reply`` (both writes,
tagged ``external-communication``: an email cannot be unsent, so policies can put them
behind a gate), ``mail.search`` (a read), ``mail.mark_seen`` and ``mail.move`` (idempotent
writes). How a send stays single when the process stops mid-transaction is
:mod:`~soloist.integrations.mail.outbox`'s business.

The inbox is read by UID under its UIDVALIDITY: each message is delivered once as
``"uidvalidity:uid"``, and a changed UIDVALIDITY starts the folder over under new delivery
ids. The first poll starts after the newest message present unless ``read_existing`` is
set. An event carries the canonical Message (attachments by name, type and size, never
their bytes), what could not be parsed (``problems``) and ``reply_to_run``: the run that
sent the message it answers, read from its In-Reply-To or References.
"""

from __future__ import annotations

import base64
import binascii
import socket
import ssl
from collections.abc import Sequence
from datetime import date
from email.utils import parseaddr
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from soloist.config.connectors import EmailConnector as EmailSettings
from soloist.errors import DeterministicError
from soloist.execution.context import ToolCall
from soloist.integrations.connector import Action, Connector, Context, Polled, Received
from soloist.integrations.entities import Contact, Line, Message, MessageId, load
from soloist.integrations.mail import compose
from soloist.integrations.mail.imap import Cursor, Fetched, IMAPClient
from soloist.integrations.mail.outbox import Outbox
from soloist.integrations.mail.smtp import SMTPClient

TAGS = ("external-communication", "email")
#: the most messages one search returns
MAX_SEARCH = 500


def _check_address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{value!r} is not an email address such as ada@example.com or "
                         "'Ada <ada@example.com>'")
    return value


def _check_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be the file's bytes in base64") from None
    return value


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


MailAddress = Annotated[str, AfterValidator(_check_address)]
#: a list of addresses; one address alone is taken as a list of one (``to: bob@x.org``)
Addresses = Annotated[tuple[MailAddress, ...], BeforeValidator(_listed)]


class AttachmentArg(BaseModel):
    """A file to attach: its name, its type and its bytes in base64."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Line = Field(min_length=1)
    content_type: Line = "application/octet-stream"
    content_base64: Annotated[str, AfterValidator(_check_base64)] = Field(repr=False)


def _contact(value: str) -> dict[str, str]:
    name, address = parseaddr(value)
    return {"name": name, "email": address}


def _files(attachments: Sequence[AttachmentArg]) -> list[compose.FileAttachment]:
    return [compose.FileAttachment(name=a.name, content_type=a.content_type,
                                   content=base64.b64decode(a.content_base64))
            for a in attachments]


def reply_to_run(message: Message) -> str | None:
    """The run that sent the message this one answers, if Soloist sent it."""
    for message_id in (message.in_reply_to, *reversed(message.references)):
        run = compose.run_of_message_id(message_id)
        if run is not None:
            return run
    return None


class EmailConnector(Connector):
    kind = "email"

    def __init__(self, name: str, section: EmailSettings, context: Context) -> None:
        super().__init__(name, section, context)
        self.settings = section
        self.sender = Contact(email=section.from_address)
        self._context: ssl.SSLContext | None = None
        self._hostname: str | None = None
        self.outbox = Outbox(name, context.store, context.guard, self._smtp, self._imap,
                             section.sent_folder)

    def prepare(self) -> None:
        # The email package loads its generator, header and encoder modules on the first
        # message it writes: done here, not in the first send's turn.
        draft = compose.Draft(sender=self.sender, to=(self.sender,), subject="prepare",
                              text="prepare")
        compose.render(draft, "prepare/prepare/0")
        compose.build(draft, "prepare/prepare/0").as_bytes()

    # -- the servers -------------------------------------------------------------------

    def _password(self) -> str:
        return self.secret(self.settings.password) or ""

    def _smtp(self) -> SMTPClient:
        host, port = self.settings.smtp
        if self._hostname is None:
            self._hostname = socket.getfqdn()  # smtplib would look it up on every connection
        return SMTPClient(host, port, username=self.settings.username,
                          password=self._password(), ssl_context=self._tls(),
                          local_hostname=self._hostname,
                          security=self.settings.smtp_security, timeout=self.settings.timeout)

    def _imap(self) -> IMAPClient | None:
        where = self.settings.imap
        if where is None:
            return None
        return IMAPClient(where[0], where[1], username=self.settings.username,
                          password=self._password(), ssl_context=self._tls(),
                          security=self.settings.imap_security, timeout=self.settings.timeout)

    def _tls(self) -> ssl.SSLContext | None:
        """One TLS context for every connection (making one loads the system's
        certificates: once, not per email); none when neither server uses TLS."""
        if self.settings.smtp_security == "none" and (
                self.settings.imap is None or self.settings.imap_security == "none"):
            return None
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def _mailbox(self) -> IMAPClient:
        imap = self._imap()
        if imap is None:
            raise DeterministicError(
                f"connector {self.name} has no IMAP account: set imap_host in "
                f"[connectors.{self.name}] to read mail")
        return imap

    # -- actions -----------------------------------------------------------------------

    def actions(self) -> Sequence[Action]:
        return (
            Action("send", self.send, "write", tags=TAGS, guarded=False),
            Action("reply", self.reply, "write", tags=TAGS, guarded=False),
            Action("search", self.search, "read", tags=("email",)),
            Action("mark_seen", self.mark_seen, "write", idempotent=True, tags=("email",)),
            Action("move", self.move, "write", idempotent=True, tags=("email",)),
        )

    def send(self, to: Addresses, subject: Line,
             text: str = "", html: str | None = None,
             cc: Addresses = (), bcc: Addresses = (),
             attachments: tuple[AttachmentArg, ...] = (),
             in_reply_to: MessageId | None = None, references: tuple[MessageId, ...] = (),
             call: ToolCall | None = None) -> dict[str, Any]:
        """Send an email (once, whatever happens to the process sending it)."""
        draft = load(compose.Draft, {
            "sender": self.sender, "to": [_contact(a) for a in to],
            "cc": [_contact(a) for a in cc], "bcc": [_contact(a) for a in bcc],
            "subject": subject, "text": text, "html": html,
            "attachments": _files(attachments), "in_reply_to": in_reply_to,
            "references": references})
        return self.outbox.send(draft, call)

    def reply(self, message: dict[str, Any], text: str = "", html: str | None = None,
              everyone: bool = False, attachments: tuple[AttachmentArg, ...] = (),
              call: ToolCall | None = None) -> dict[str, Any]:
        """Answer a received message (as email.received carries it), in its thread."""
        original = load(Message, message)
        draft = compose.reply(original, self.sender, text=text, html=html,
                              attachments=tuple(_files(attachments)), everyone=everyone)
        return self.outbox.send(draft, call)

    def search(self, folder: Line = "INBOX", from_address: Line | None = None,
               subject: Line | None = None, since: date | None = None,
               limit: Annotated[int, Field(ge=1, le=MAX_SEARCH)] = 50
               ) -> list[dict[str, Any]]:
        """The newest messages of a folder, by sender, subject and date (newest first)."""
        criteria: list[Any] = []
        if from_address:
            criteria += ["FROM", from_address]
        if subject:
            criteria += ["SUBJECT", subject]
        if since is not None:
            criteria += ["SINCE", since]
        with self._mailbox() as imap:
            found = imap.search(criteria, folder, limit=limit)
        return [self._found(folder, item) for item in found]

    def mark_seen(self, uids: tuple[int, ...], folder: Line = "INBOX") -> dict[str, Any]:
        """Flag messages of a folder as seen."""
        with self._mailbox() as imap:
            imap.mark_seen(uids, folder)
        return {"folder": folder, "uids": sorted(set(uids))}

    def move(self, uids: tuple[int, ...], destination: Line,
             folder: Line = "INBOX") -> dict[str, Any]:
        """Move messages from one folder to another."""
        with self._mailbox() as imap:
            imap.move(uids, destination, folder)
        return {"folder": folder, "destination": destination, "uids": sorted(set(uids))}

    def _found(self, folder: str, item: Fetched) -> dict[str, Any]:
        message = item.message
        return {"connector": self.name, "folder": folder, "uid": item.uid,
                "message": message.model_dump(mode="json", by_alias=True),
                "reply_to_run": reply_to_run(message), "problems": list(message.problems)}

    # -- receiving ---------------------------------------------------------------------

    def sources(self) -> Sequence[Inbox]:
        return () if self.settings.imap is None else (Inbox(self),)

    def test(self) -> str:
        host, port = self.settings.smtp
        with self._smtp():
            pass
        said = f"logged in to SMTP {host}:{port} as {self.settings.username}"
        imap = self._imap()
        if imap is not None:
            with imap:
                imap.uidvalidity(self.settings.inbox_folder)
            said += (f" and to IMAP {imap.where}, where the folder "
                     f"{self.settings.inbox_folder} opens")
        return said


class Inbox:
    """The connector's inbox folder, read by UID (see the module's docstring)."""

    def __init__(self, connector: EmailConnector) -> None:
        self.connector = connector
        self.folder = connector.settings.inbox_folder

    @property
    def id(self) -> str:
        return self.folder

    @property
    def interval(self) -> float:
        return self.connector.settings.poll_interval

    def poll(self, cursor: Any, limit: int) -> Polled:
        start = Cursor.from_json(cursor) if _is_cursor(cursor) else None
        with self.connector._mailbox() as imap:
            if start is None and not self.connector.settings.read_existing:
                return Polled([], imap.newest(self.folder).to_json())
            batch = imap.fetch_new(start, self.folder, limit=limit)
        validity = batch.cursor.uidvalidity
        events = [Received(f"{validity}:{item.uid}", "email.received",
                           self.connector._found(self.folder, item),
                           Cursor(validity, item.uid).to_json())
                  for item in batch.messages]
        return Polled(events, batch.cursor.to_json(), batch.more)


def _is_cursor(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("uidvalidity"), int)
            and isinstance(value.get("last_uid"), int))
