"""A real SMTP server (``aiosmtpd``) on ``127.0.0.1``, for testing the email connector.

It asks for AUTH PLAIN or LOGIN with one user and password, and records every message it
accepts (envelope and raw bytes) in memory and, when given a folder, as ``<n>.eml`` plus
``<n>.json`` (envelope) files, so a test can count deliveries by Message-ID even across
restarts of the process that sent them (or of the server: numbering continues).
Two knobs, settable while it runs:

* ``reply_delay``: seconds to wait before answering the end of DATA. The message is
  recorded when its DATA ends, before the wait, as a relay that has queued it: the
  wait is the window in which a crash test kills a sender that has sent the whole
  message but not seen the ``250``; the message stays delivered when the sender is
  gone. :meth:`SMTPTestServer.hold_replies` / :meth:`SMTPTestServer.release_replies`
  hold the replies for as long as a test wants instead (no timing involved), and
  :meth:`SMTPTestServer.wait_for_messages` waits until messages have arrived;
* ``reply_error``: answer the end of DATA with this line (``"451 4.3.0 try later"``,
  ``"554 5.7.1 rejected"``) instead of accepting (after the same wait); the message is
  not recorded.

STARTTLS is offered when ``starttls=True`` (a self-signed certificate made at start;
clients use ``ssl_context`` from :attr:`SMTPTestServer.client_ssl_context`).

::

    with SMTPTestServer() as smtp:
        with smtplib.SMTP(smtp.host, smtp.port) as client:
            client.login(smtp.user, smtp.password)
            client.send_message(msg)
        assert smtp.message_ids() == {"<a@b>": 1}
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from support.netutil import HOST, Harness, free_port, self_signed_cert

__all__ = ["ReceivedMessage", "SMTPTestServer"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: who authenticated, the envelope, and the bytes of DATA."""

    login: str | None
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float = 0.0  # when its DATA ended (time.time())

    @property
    def message_id(self) -> str | None:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        value = parsed.get("Message-ID")
        return None if value is None else str(value).strip()


class _Handler:
    def __init__(self, server: SMTPTestServer) -> None:
        self._server = server

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # aiosmtpd warns (an error under pytest) when it requires AUTH without TLS, so the
        # requirement is enforced here instead, with the reply a real relay gives.
        if self._server.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self._server
        if owner.reply_error is not None:
            await self._wait(owner)
            return owner.reply_error
        login = session.auth_data
        content = envelope.original_content or b""
        message = ReceivedMessage(
            login=login.decode() if isinstance(login, bytes) else login,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=content,
            received_at=time.time(),
        )
        # Recorded before the wait, as a relay that has queued the message: if the sender
        # disconnects now, aiosmtpd cancels this coroutine, but the message is delivered.
        owner._record(message)
        await self._wait(owner)
        return "250 2.0.0 OK queued"

    @staticmethod
    async def _wait(owner: SMTPTestServer) -> None:
        if owner.reply_delay > 0:
            await asyncio.sleep(owner.reply_delay)
        # Polled rather than awaited in a thread, so a cancelled session leaves nothing behind.
        while not owner._released.is_set():
            await asyncio.sleep(0.01)


class SMTPTestServer(Harness):
    """``aiosmtpd`` in a background thread on ``127.0.0.1`` and a free port."""

    def __init__(
        self,
        *,
        user: str = "sender@example.test",
        password: str = "s3cret",
        folder: Path | None = None,
        reply_delay: float = 0.0,
        reply_error: str | None = None,
        starttls: bool = False,
        require_auth: bool = True,
    ) -> None:
        self.host = HOST
        self.port = 0
        self.user = user
        self.password = password
        self.folder = folder
        self.reply_delay = reply_delay
        self.reply_error = reply_error
        self.starttls = starttls
        self.require_auth = require_auth
        self.client_ssl_context: ssl.SSLContext | None = None
        self._messages: list[ReceivedMessage] = []
        self._lock = threading.Condition()
        self._controller: Controller | None = None
        self._first_file = 0
        self._released = threading.Event()
        self._released.set()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        params: dict[str, Any] = {
            "authenticator": self._authenticate,
            # Plain-text AUTH is what a local relay usually accepts; TLS is tested apart.
            "auth_require_tls": False,
        }
        if self.starttls:
            self._tmp = tempfile.TemporaryDirectory(prefix="soloist-smtp-")
            cert, key = self_signed_cert(Path(self._tmp.name))
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(cert, key)
            params["tls_context"] = server_context
            client_context = ssl.create_default_context(cafile=str(cert))
            self.client_ssl_context = client_context
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._first_file = len(list(self.folder.glob("*.eml")))
        self.port = free_port()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **params)
        self._controller.start()
        return self

    def stop(self) -> None:
        self.release_replies()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- what was received ---------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def hold_replies(self) -> None:
        """Hold every reply to the end of DATA (messages are recorded) until released."""
        self._released.clear()

    def release_replies(self) -> None:
        self._released.set()

    def wait_for_messages(self, count: int, timeout: float = 30.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages were accepted (or ``timeout`` passed)."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._messages) >= count, timeout)
            return list(self._messages)

    def message_ids(self) -> Counter[str | None]:
        """How many times each Message-ID was accepted (from memory, this process only)."""
        return Counter(m.message_id for m in self.messages)

    @staticmethod
    def message_ids_in(folder: Path) -> Counter[str | None]:
        """The same count read back from a ``folder`` (works after the server is gone)."""
        counts: Counter[str | None] = Counter()
        for path in sorted(folder.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            value = parsed.get("Message-ID")
            counts[None if value is None else str(value).strip()] += 1
        return counts

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            number = len(self._messages) + 1
            if self.folder is not None:
                self._write(number, message)
            self._messages.append(message)
            self._lock.notify_all()

    def _write(self, number: int, message: ReceivedMessage) -> None:
        assert self.folder is not None
        # Numbered after what a previous server left in the folder, so a restarted
        # server adds to the count instead of overwriting it.
        stem = self.folder / f"{self._first_file + number:06d}"
        envelope = {
            "login": message.login,
            "mail_from": message.mail_from,
            "rcpt_tos": list(message.rcpt_tos),
        }
        stem.with_suffix(".json").write_text(json.dumps(envelope))
        stem.with_suffix(".eml").write_bytes(message.data)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == self.user and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)
