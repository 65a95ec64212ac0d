"""A real SMTP server (``aiosmtpd``) on ``127.0.0.1``, for testing the email connector.

The demo's :class:`~soloist.demo.mailboxes.SMTPServer` (AUTH PLAIN or LOGIN with one user
and password; every accepted message recorded in memory and, when given a folder, as
``<n>.eml`` plus ``<n>.json`` files, so a test can count deliveries by Message-ID even
across restarts of the process that sent them, or of the server: numbering continues),
with the knobs only tests need, settable while it runs:

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
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any, Self

from soloist.demo.mailboxes import OK_REPLY, ReceivedMessage, SMTPServer
from support.netutil import self_signed_cert

__all__ = ["ReceivedMessage", "SMTPTestServer"]


class SMTPTestServer(SMTPServer):
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
        super().__init__(folder, user=user, password=password, require_auth=require_auth)
        self.reply_delay = reply_delay
        self.reply_error = reply_error
        self.starttls = starttls
        self.client_ssl_context: ssl.SSLContext | None = None
        self._released = threading.Event()
        self._released.set()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def controller_options(self) -> dict[str, Any]:
        options = super().controller_options()
        if self.starttls:
            self._tmp = tempfile.TemporaryDirectory(prefix="soloist-smtp-")
            cert, key = self_signed_cert(Path(self._tmp.name))
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(cert, key)
            options["tls_context"] = server_context
            self.client_ssl_context = ssl.create_default_context(cafile=str(cert))
        return options

    def start(self) -> Self:
        try:
            return super().start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.release_replies()
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def answer(self, message: ReceivedMessage) -> str:
        # Recorded before the wait, as a relay that has queued the message: if the sender
        # disconnects now, aiosmtpd cancels this coroutine, but the message is delivered.
        if self.reply_error is None:
            self.record(message)
        if self.reply_delay > 0:
            await asyncio.sleep(self.reply_delay)
        # Polled rather than awaited in a thread, so a cancelled session leaves nothing behind.
        while not self._released.is_set():
            await asyncio.sleep(0.01)
        return self.reply_error or OK_REPLY

    def hold_replies(self) -> None:
        """Hold every reply to the end of DATA (messages are recorded) until released."""
        self._released.clear()

    def release_replies(self) -> None:
        self._released.set()
