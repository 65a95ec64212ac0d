"""The demo's mail servers: SMTP (``aiosmtpd`` in a thread) and IMAP (``pymap``).

:class:`SMTPServer` asks for AUTH PLAIN or LOGIN with one user and password (plain text,
as a local relay does) and records every message it accepts as ``NNNNNN.eml`` plus
``NNNNNN.json`` (the envelope) in its folder, numbered after what the folder holds, so
deliveries are counted by Message-ID from any process and across restarts.

:class:`IMAPServer` is pymap's in-memory backend with one user, plain LOGIN and no TLS;
the ``Sent`` folder is created at start (the backend starts a user with ``INBOX`` only).
"""

from __future__ import annotations

import email
import email.policy
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from soloist.demo.processes import HOST, ProcessServer, Server, free_port, require
from soloist.errors import ServerFailed

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
    from imapclient import IMAPClient

__all__ = [
    "OK_REPLY",
    "IMAPServer",
    "MailMessage",
    "ReceivedMessage",
    "SMTPServer",
    "read_messages",
]

#: the answer to the end of DATA for a message that was accepted
OK_REPLY = "250 2.0.0 OK queued"


@dataclass(frozen=True)
class MailMessage:
    """One message a mail server holds, as raw bytes and parsed."""

    data: bytes
    uid: int | None = field(default=None, kw_only=True)  # its IMAP UID, read from a folder
    parsed: EmailMessage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        object.__setattr__(self, "parsed", message)

    def header(self, name: str) -> str | None:
        value = self.parsed.get(name)
        return None if value is None else " ".join(str(value).split())

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @property
    def in_reply_to(self) -> str | None:
        return self.header("In-Reply-To")

    @property
    def references(self) -> tuple[str, ...]:
        return tuple((self.header("References") or "").split())

    @cached_property
    def text(self) -> str:
        """The plain-text body ("" when there is none)."""
        body = self.parsed.get_body(preferencelist=("plain",))
        return "" if body is None else str(body.get_content()).replace("\r\n", "\n")


@dataclass(frozen=True, kw_only=True)
class ReceivedMessage(MailMessage):
    """A message an SMTP server accepted: who sent it (login, envelope) and when."""

    login: str | None
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: float = 0.0  # when its DATA ended (time.time())


def read_messages(folder: Path) -> list[ReceivedMessage]:
    """The messages an :class:`SMTPServer` recorded in ``folder``, oldest first."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        envelope_file = path.with_suffix(".json")
        envelope: dict[str, Any] = (json.loads(envelope_file.read_text())
                                    if envelope_file.exists() else {})
        found.append(ReceivedMessage(
            login=envelope.get("login"), mail_from=envelope.get("mail_from", ""),
            rcpt_tos=tuple(envelope.get("rcpt_tos", ())), data=path.read_bytes(),
            received_at=float(envelope.get("received_at", 0.0))))
    return found


class _Handler:
    def __init__(self, owner: SMTPServer) -> None:
        self._owner = owner

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        # aiosmtpd warns when it requires AUTH without TLS (its auth_required), so the
        # requirement is enforced here instead, with the reply a real relay gives.
        if self._owner.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data
        message = ReceivedMessage(
            login=login.decode() if isinstance(login, bytes) else login,
            mail_from=envelope.mail_from or "", rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content or b"", received_at=time.time())
        return await self._owner.answer(message)


class SMTPServer(Server):
    """``aiosmtpd`` in a background thread on ``127.0.0.1``, recording what it accepts."""

    name = "SMTP (aiosmtpd)"

    def __init__(self, folder: Path | None = None, *, user: str, password: str,
                 port: int = 0, require_auth: bool = True) -> None:
        self.host = HOST
        self.port = port
        self._wanted_port = port
        self.user = user
        self.password = password
        self.folder = folder
        self.require_auth = require_auth
        self._messages: list[ReceivedMessage] = []
        self._lock = threading.Condition()
        self._first_file = 0
        self._controller: Any = None

    def controller_options(self) -> dict[str, Any]:
        """Keyword arguments of aiosmtpd's ``Controller`` (a subclass adds TLS)."""
        # Plain-text AUTH is what a local relay accepts; nothing leaves 127.0.0.1.
        return {"authenticator": self._authenticate, "auth_require_tls": False}

    def start(self) -> Self:
        require("aiosmtpd")
        import asyncio

        from aiosmtpd.controller import Controller

        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._first_file = len(list(self.folder.glob("*.eml")))
        self.port = self._wanted_port or free_port()
        loop = asyncio.new_event_loop()
        controller = Controller(_Handler(self), loop=loop, hostname=self.host, port=self.port,
                                **self.controller_options())
        try:
            controller.start()
        except Exception as error:
            controller.stop(no_assert=True)
            loop.close()  # left open by a thread that could not bind
            raise ServerFailed(f"the {self.name} server did not start on "
                               f"{self.host}:{self.port}: {error}") from None
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def answer(self, message: ReceivedMessage) -> str:
        """The reply to the end of DATA: record ``message``, then accept it."""
        self.record(message)
        return OK_REPLY

    # -- what was received ---------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """What this server accepted since it started (this process only)."""
        with self._lock:
            return list(self._messages)

    def delivered_messages(self) -> list[ReceivedMessage]:
        """Every message delivered: from the folder when there is one (all processes)."""
        return read_messages(self.folder) if self.folder is not None else self.messages

    def delivered(self) -> Counter[str | None]:
        """How many times each Message-ID was delivered."""
        return Counter(message.message_id for message in self.delivered_messages())

    def message_ids(self) -> Counter[str | None]:
        """How many times each Message-ID was accepted (from memory, this process only)."""
        return Counter(m.message_id for m in self.messages)

    @staticmethod
    def message_ids_in(folder: Path) -> Counter[str | None]:
        """The same count read back from a ``folder`` (works after the server is gone)."""
        return Counter(message.message_id for message in read_messages(folder))

    def wait_for_messages(self, count: int, timeout: float = 30.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages were accepted (or ``timeout`` passed)."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._messages) >= count, timeout)
            return list(self._messages)

    def record(self, message: ReceivedMessage) -> None:
        with self._lock:
            number = len(self._messages) + 1
            if self.folder is not None:
                # Numbered after what a previous server left in the folder, so a
                # restarted server adds to the count instead of overwriting it.
                stem = self.folder / f"{self._first_file + number:06d}"
                envelope = {"login": message.login, "mail_from": message.mail_from,
                            "rcpt_tos": list(message.rcpt_tos),
                            "received_at": message.received_at}
                stem.with_suffix(".json").write_text(json.dumps(envelope))
                stem.with_suffix(".eml").write_bytes(message.data)
            self._messages.append(message)
            self._lock.notify_all()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == self.user and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


class IMAPServer(ProcessServer):
    """``pymap`` (dict backend, one user) as a subprocess on ``127.0.0.1``."""

    name = "IMAP (pymap)"
    prefix = "soloist-imap-"
    log_name = "pymap.log"
    modules = ("pymap", "imapclient")

    def __init__(self, folder: Path | None = None, *, user: str, password: str,
                 port: int = 0) -> None:
        super().__init__(folder, port=port)
        self.user = user
        self.password = password

    def command(self) -> list[str]:
        return [
            sys.executable, "-c", "from pymap.main import main; main()",
            "--host", self.host, "--port", str(self.port), "--no-tls",
            # Only the IMAP service: the admin (gRPC) service would listen on a fixed port.
            "--no-service", "admin", "--no-service", "managesieve", "--no-service", "swim",
            # With "=": a password may begin with "-", which would read as an option.
            "dict", f"--demo-user={self.user}", f"--demo-password={self.password}",
        ]  # fmt: skip

    def ready(self) -> None:
        with self.client() as client:
            client.create_folder("Sent")

    def client(self) -> IMAPClient:
        """A logged-in ``imapclient`` connection (use it as a context manager)."""
        from imapclient import IMAPClient

        # A loaded machine can take a while over pymap's first answer.
        client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        return client

    def deliver(self, message: bytes, folder: str = "INBOX") -> None:
        """Put ``message`` (raw RFC 5322 bytes) into ``folder``, unseen, as a delivery
        by a mail server would look to a reader."""
        with self.client() as client:
            client.append(folder, message)

    def folder_messages(self, folder: str = "Sent") -> dict[int, bytes]:
        """Every message of ``folder``: UID to raw bytes."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            fetched = client.fetch(uids, ["BODY.PEEK[]"])
            return {uid: data[b"BODY[]"] for uid, data in fetched.items()}

    def messages(self, folder: str = "INBOX") -> list[MailMessage]:
        """Every message of ``folder``, parsed, by UID."""
        return [MailMessage(data, uid=uid)
                for uid, data in sorted(self.folder_messages(folder).items())]
