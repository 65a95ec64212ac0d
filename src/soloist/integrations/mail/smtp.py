"""Sending one built message over SMTP, with every failure in Soloist's error kinds.

A send is two calls because the caller records the intent's state between them:
:meth:`SMTPClient.open` connects, secures (``none``, ``starttls`` or ``tls``) and logs in,
and whatever fails there sent nothing; :meth:`SMTPClient.send` gives the envelope and the
message. Up to the server's ``354`` nothing was sent either (``before_data`` runs then, so
the caller can record that the send is under way, and a failure there aborts the
transaction with nothing sent); once the message's bytes
start going out, a broken connection or a timeout leaves the outcome unknown: the server
may have queued it and only its reply was lost. That case raises
:class:`~soloist.errors.OutcomeUnknown` (a ``TransientError``), never a plain transient
error, so the caller looks for the message (its Message-ID, in the Sent folder) before
trying again. An exception rather than a result value because a caller that forgets to
check it must not take the send for done: an unhandled ``OutcomeUnknown`` is still a
failure of the step, and its kind still says "transient, reconcile first".

Replies map by their first digit: ``4xx`` is transient (busy, greylisted, try later),
``5xx`` deterministic (refused). Connection refused, resets and timeouts are transient; a
certificate that does not verify, or a server that lacks STARTTLS or AUTH, is
deterministic. Messages name the server and the user, never the password.

Recipients are all or nothing: if the server refuses any of them, the transaction is
reset and nothing is sent, since a partial send cannot be retried without sending twice
to the recipients that were accepted.
"""

from __future__ import annotations

import copy
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import NoReturn, Self

from soloist.config.connectors import Security
from soloist.errors import DeterministicError, OutcomeUnknown, StepFailure, TransientError
from soloist.integrations.mail.account import MailAccount
from soloist.integrations.mail.compose import Outgoing

_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SendReply:
    """The server's answer to a message it accepted: ``250 2.0.0 OK queued as ...``."""

    code: int
    text: str
    message_id: str | None


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


class SMTPClient(MailAccount):
    """One SMTP connection to ``host:port``; use it as a context manager, or call
    :meth:`open` then :meth:`close`. ``password`` is the resolved secret (``None``: no
    AUTH). ``timeout`` (seconds) bounds every network wait, the final reply included.
    A refusal leaves the connection usable for the next message; a broken connection
    closes the client, and :meth:`open` connects again."""

    def __init__(self, host: str, port: int, *, username: str | None = None,
                 password: str | None = None, security: Security = "starttls",
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 local_hostname: str | None = None) -> None:
        super().__init__(host, port, username=username, password=password,
                         security=security, timeout=timeout, ssl_context=ssl_context)
        self._local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None

    # -- open: nothing is sent by anything that fails here ------------------------------

    def open(self) -> Self:
        """Connect, secure and log in; raises ``TransientError`` or ``DeterministicError``."""
        if self._smtp is not None:
            return self
        context = self.tls_context()
        try:
            smtp: smtplib.SMTP
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=context, local_hostname=self._local_hostname)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout,
                                    local_hostname=self._local_hostname)
        except Exception as error:
            self._failed("connect to", error)
        self._smtp = smtp
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._password is not None:
                smtp.login(self.username or "", self._password)
        except smtplib.SMTPAuthenticationError as error:
            self.close()
            if 400 <= error.smtp_code < 500:
                raise TransientError(f"cannot log in to {self.where} as {self.username}: the "
                                     f"server is busy ({error.smtp_code})") from None
            raise DeterministicError(f"cannot log in to {self.where} as {self.username}: "
                                     "authentication failed") from None
        except smtplib.SMTPNotSupportedError as error:
            self.close()
            raise DeterministicError(f"cannot log in to {self.where}: the server does not "
                                     f"support {_needed(error)}") from None
        except Exception as error:
            self.close()
            self._failed("log in to", error)
        return self

    def close(self) -> None:
        """Say QUIT if the connection still answers, then drop it; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    # -- send: after the message began, a failure leaves the outcome unknown -------------

    def send(self, message: Outgoing | EmailMessage, sender: str, recipients: Sequence[str], *,
             before_data: Callable[[], None] | None = None) -> SendReply:
        """Send ``message`` from the envelope ``sender`` to ``recipients`` (see
        :func:`~soloist.integrations.mail.compose.recipients`) and return the reply.

        ``before_data`` is called once the server answered ``354`` to DATA, before any
        byte of the message goes out; whatever it raises drops the connection (the server
        then discards the transaction) and is raised as it is.

        Raises ``TransientError``/``DeterministicError`` when nothing was sent (a refusal
        of the message after its end is definite too), and
        :class:`~soloist.errors.OutcomeUnknown` when the message may have been.
        """
        smtp = self._smtp
        if smtp is None:
            raise DeterministicError(f"the SMTP connection to {self.where} is not open")
        if not recipients:
            raise DeterministicError("a message needs at least one envelope recipient")
        if isinstance(message, EmailMessage):
            message = Outgoing.of(_without_bcc(message))
        data = _dot_stuffed(message.data)
        message_id = message.message_id or None
        try:
            self._envelope(smtp, sender, recipients)
            code, reply = smtp.docmd("DATA")
        except StepFailure:
            raise
        except Exception as error:
            self.close()
            self._failed("send to", error)
        if code != 354:
            self._reset(smtp)
            _refused(f"{self.where} refused the message", code, reply)
        if before_data is not None:
            try:
                before_data()
            except BaseException:
                # Mid-DATA there is no RSET: a connection closed before the final "." is a
                # transaction the server drops.
                self._abort()
                raise
        try:
            smtp.send(data)
            code, reply = smtp.getreply()
        except Exception as error:
            self.close()
            sent = f"the message {message_id}" if message_id else "the message"
            raise OutcomeUnknown(f"{self.where} did not answer after {sent} was sent "
                                 f"({_reason(error)}): it may have been delivered") from None
        if code != 250:
            # An answer to the end of DATA is definite: the server did not take it.
            _refused(f"{self.where} refused the message {message_id or ''}".rstrip(),
                     code, reply)
        return SendReply(code=code, text=_text(reply), message_id=message_id)

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipients: Sequence[str]) -> None:
        code, reply = smtp.mail(sender)
        if code != 250:
            self._reset(smtp)
            _refused(f"{self.where} refused the sender {sender}", code, reply)
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset(smtp)
                _refused(f"{self.where} refused the recipient {recipient}", code, reply)

    def _abort(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def _failed(self, doing: str, error: Exception) -> NoReturn:
        """Translate a failure where nothing was sent."""
        what = f"cannot {doing} {self.where}"
        if isinstance(error, ssl.SSLCertVerificationError):
            raise DeterministicError(f"{what}: its TLS certificate does not verify "
                                     f"({error.verify_message})") from None
        if isinstance(error, smtplib.SMTPResponseException):
            _refused(what, error.smtp_code, error.smtp_error)
        if isinstance(error, smtplib.SMTPException | OSError):
            raise TransientError(f"{what}: {_reason(error)}") from None
        raise DeterministicError(f"{what}: {_reason(error)}") from None


def _without_bcc(message: EmailMessage) -> EmailMessage:
    if message.get("Bcc") is not None:
        message = copy.copy(message)
        del message["Bcc"]
    return message


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA section as smtplib would send it: leading dots doubled, ended by ``.``."""
    data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _refused(what: str, code: int, reply: bytes | str) -> NoReturn:
    detail = f"{what}: {code} {_text(reply)}".rstrip()
    if 400 <= code < 500:
        raise TransientError(detail)
    raise DeterministicError(detail)


def _needed(error: smtplib.SMTPNotSupportedError) -> str:
    return "STARTTLS" if "STARTTLS" in str(error) else "AUTH"


def _reason(error: BaseException) -> str:
    # smtplib turns a socket error while reading a reply into SMTPServerDisconnected,
    # raised while handling it: the socket error is the reason.
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(
            error.__context__, OSError):
        error = error.__context__
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    if isinstance(error, ConnectionError):
        return "the connection was reset"
    text = str(error).strip()
    return text or type(error).__name__
