"""Reading a mailbox over IMAP, and keeping the Sent folder: every failure in Soloist's kinds.

:class:`IMAPClient` wraps one logged-in ``imapclient`` connection. New mail is read by UID
against a :class:`Cursor` (``uidvalidity``, ``last_uid``) that the caller keeps between
polls (the store's connector cursor holds it): :meth:`IMAPClient.fetch_new` returns the
messages whose UID is above ``last_uid``, oldest first and at most ``limit`` of them, each
parsed with :func:`~soloist.integrations.mail.parse.parse_message` (which never raises: what
it cannot read is in ``Message.problems``) and fetched with ``BODY.PEEK`` so reading does
not mark it seen. A server without CONDSTORE offers nothing better than UIDs; they only
mean something under one UIDVALIDITY, so when the folder's UIDVALIDITY is not the
cursor's the batch starts over from UID 0 and says so (``restarted``): the caller then
relies on Message-ID deduplication (the inbound backlog) for what it had already seen.

Sending leaves a copy in the Sent folder (:meth:`IMAPClient.append_sent`, which creates
the folder if missing; found by name, since not every server has SPECIAL-USE), and
:meth:`IMAPClient.search_message_id` answers "was this message sent?" after a send whose
outcome is unknown. :meth:`IMAPClient.mark_seen` and :meth:`IMAPClient.move` act on UIDs.

Failures: a server that cannot be reached, a dropped connection or a timeout is a
``TransientError``, as is a ``NO [UNAVAILABLE]``/``[INUSE]`` answer; a refused login is a
``DeterministicError`` ("cannot log in to host:port as ada: authentication failed"), and
so is any other refused command. Messages never hold the password.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Self, TypeVar

import imapclient
from imapclient.exceptions import LoginError

from soloist.config.connectors import Security
from soloist.errors import DeterministicError, TransientError
from soloist.integrations.entities import Message
from soloist.integrations.mail.account import MailAccount
from soloist.integrations.mail.parse import parse_message

#: UIDs fetched per FETCH command: bounded so one huge mailbox is several round trips
FETCH_CHUNK = 25
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_BUSY = re.compile(r"\[(UNAVAILABLE|INUSE|LIMIT)\]", re.IGNORECASE)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Cursor:
    """Where reading a folder got to: every UID up to ``last_uid`` under ``uidvalidity``
    was read. ``Cursor(0)`` (or no cursor) means "from the start"."""

    uidvalidity: int
    last_uid: int = 0

    def to_json(self) -> dict[str, int]:
        return {"uidvalidity": self.uidvalidity, "last_uid": self.last_uid}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Cursor:
        return cls(uidvalidity=int(value["uidvalidity"]), last_uid=int(value["last_uid"]))


@dataclass(frozen=True)
class Fetched:
    """One message read from a folder, and its UID there."""

    uid: int
    message: Message


@dataclass(frozen=True)
class Batch:
    """What one :meth:`IMAPClient.fetch_new` read: the messages, the cursor to store once
    they are kept, whether the folder's UIDVALIDITY changed (``restarted``: the cursor was
    reset to UID 0), and whether more new messages are waiting (``more``)."""

    messages: tuple[Fetched, ...]
    cursor: Cursor
    restarted: bool = False
    more: bool = False


class IMAPClient(MailAccount):
    """One IMAP connection to ``host:port`` as ``username``; use it as a context manager,
    or :meth:`open` then :meth:`close`. ``password`` is the resolved secret. A lost
    connection closes the client (the failure is transient); :meth:`open` connects again."""

    def __init__(self, host: str, port: int, *, username: str, password: str,
                 security: Security = "tls", timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(host, port, username=username, password=password,
                         security=security, timeout=timeout, ssl_context=ssl_context)
        self._client: imapclient.IMAPClient | None = None

    # -- connection ------------------------------------------------------------------------

    def open(self) -> Self:
        if self._client is not None:
            return self
        context = self.tls_context()
        try:
            client = imapclient.IMAPClient(self.host, self.port, ssl=self.security == "tls",
                                           ssl_context=context, timeout=self.timeout)
        except Exception as error:
            _failed(f"cannot connect to {self.where}", error)
        self._client = client
        try:
            if self.security == "starttls":
                client.starttls(context)
            client.login(self.username, self._password)
        except LoginError:
            self.close()
            raise DeterministicError(f"cannot log in to {self.where} as {self.username}: "
                                     "authentication failed") from None
        except Exception as error:
            self.close()
            _failed(f"cannot log in to {self.where} as {self.username}", error)
        return self

    def close(self) -> None:
        """Log out if the connection still answers, then drop it; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            try:
                client.shutdown()
            except Exception:  # the socket is gone either way
                pass

    def _call(self, doing: str, action: Callable[[imapclient.IMAPClient], _T]) -> _T:
        client = self._client
        if client is None:
            raise DeterministicError(f"the IMAP connection to {self.where} is not open")
        try:
            return action(client)
        except Exception as error:
            if isinstance(error, imaplib.IMAP4.abort | OSError):
                self.close()  # the connection is unusable after an abort
            _failed(f"cannot {doing} on {self.where}", error)

    # -- reading new mail ------------------------------------------------------------------

    def uidvalidity(self, folder: str = "INBOX") -> int:
        """The folder's UIDVALIDITY (selects it read-only)."""
        return self._select(folder, readonly=True)

    def _select(self, folder: str, *, readonly: bool) -> int:
        def select(client: imapclient.IMAPClient) -> int:
            answer = client.select_folder(folder, readonly=readonly)
            return int(answer[b"UIDVALIDITY"])

        return self._call(f"open the folder {folder!r}", select)

    def newest(self, folder: str = "INBOX") -> Cursor:
        """A cursor past every message ``folder`` holds now (from STATUS UIDNEXT): reading
        from it gives only the mail that arrives later."""
        def status(client: imapclient.IMAPClient) -> Cursor:
            answer = client.folder_status(folder, [b"UIDNEXT", b"UIDVALIDITY"])
            return Cursor(int(answer[b"UIDVALIDITY"]), max(0, int(answer[b"UIDNEXT"]) - 1))

        return self._call(f"read the status of the folder {folder!r}", status)

    def search(self, criteria: Sequence[Any], folder: str = "INBOX", *,
               limit: int = 50) -> list[Fetched]:
        """The newest ``limit`` messages of ``folder`` that match the IMAP SEARCH
        ``criteria`` (``["FROM", "ada@x.org", "SINCE", date]``), newest first."""
        if limit < 1:
            raise DeterministicError("limit must be at least 1")
        self._select(folder, readonly=True)
        wide = any(isinstance(c, str) and not c.isascii() for c in criteria)
        found = self._call(f"search the folder {folder!r}", lambda c: c.search(
            list(criteria) or ["ALL"], charset="UTF-8" if wide else None))
        uids = sorted((int(u) for u in found), reverse=True)[:limit]
        out: list[Fetched] = []
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start:start + FETCH_CHUNK]

            def fetch(client: imapclient.IMAPClient, chunk: list[int] = chunk) -> Any:
                return client.fetch(chunk, ["BODY.PEEK[]"])

            answer = self._call(f"fetch messages from the folder {folder!r}", fetch)
            out.extend(Fetched(uid, _parsed(answer.get(uid), uid)) for uid in chunk)
        return out

    def fetch_new(self, cursor: Cursor | None, folder: str = "INBOX", *,
                  limit: int = 100) -> Batch:
        """The messages of ``folder`` above ``cursor.last_uid``, oldest first, at most
        ``limit``; from UID 0 when there is no cursor or the folder's UIDVALIDITY changed."""
        if limit < 1:
            raise DeterministicError("limit must be at least 1")
        validity = self._select(folder, readonly=True)
        restarted = cursor is not None and cursor.uidvalidity != validity
        last = cursor.last_uid if cursor is not None and not restarted else 0
        # "n:*" always matches the highest UID, even below n: filter rather than trust it.
        found = self._call(f"search the folder {folder!r}",
                           lambda c: c.search(["UID", f"{last + 1}:*"]))
        uids = sorted(uid for uid in (int(u) for u in found) if uid > last)
        taken, more = uids[:limit], len(uids) > limit
        messages: list[Fetched] = []
        for start in range(0, len(taken), FETCH_CHUNK):
            chunk = taken[start:start + FETCH_CHUNK]

            def fetch(client: imapclient.IMAPClient, chunk: list[int] = chunk) -> Any:
                return client.fetch(chunk, ["BODY.PEEK[]"])

            answer = self._call(f"fetch messages from the folder {folder!r}", fetch)
            for uid in chunk:
                messages.append(Fetched(uid, _parsed(answer.get(uid), uid)))
        new_last = taken[-1] if taken else last
        return Batch(messages=tuple(messages), cursor=Cursor(validity, new_last),
                     restarted=restarted, more=more)

    # -- the Sent folder and reconciliation ------------------------------------------------

    def append_sent(self, raw: bytes, folder: str = "Sent") -> int | None:
        """Save ``raw`` (a sent message's bytes) into ``folder`` as seen, creating the folder
        when it is missing; the new UID when the server says it (UIDPLUS), else ``None``."""
        def append(client: imapclient.IMAPClient) -> int | None:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            answer = client.append(folder, raw, flags=(imapclient.SEEN,))
            found = _APPENDUID.search(answer if isinstance(answer, bytes) else b"")
            return int(found.group(2)) if found else None

        return self._call(f"save a message into the folder {folder!r}", append)

    def search_message_id(self, message_id: str, folder: str = "Sent") -> list[int]:
        """The UIDs in ``folder`` of messages whose Message-ID header is ``message_id``
        (with its angle brackets); empty when there is none, or no such folder."""
        if any(ch in message_id for ch in '\r\n"\\'):
            raise DeterministicError(f"not a Message-ID: {message_id!r}")

        def search(client: imapclient.IMAPClient) -> list[int]:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(int(u) for u in client.search(["HEADER", "Message-ID", message_id]))

        return self._call(f"search the folder {folder!r}", search)

    def mark_seen(self, uids: Iterable[int], folder: str = "INBOX") -> None:
        """Flag the messages ``uids`` of ``folder`` as seen."""
        chosen = sorted(set(uids))
        if not chosen:
            return
        self._select(folder, readonly=False)
        self._call(f"mark messages seen in the folder {folder!r}",
                   lambda c: c.add_flags(chosen, [imapclient.SEEN], silent=True))

    def move(self, uids: Iterable[int], destination: str, folder: str = "INBOX") -> None:
        """Move the messages ``uids`` from ``folder`` to ``destination`` (MOVE, or COPY,
        delete and expunge on a server without it)."""
        chosen = sorted(set(uids))
        if not chosen:
            return
        self._select(folder, readonly=False)

        def move(client: imapclient.IMAPClient) -> None:
            if client.has_capability("MOVE"):
                client.move(chosen, destination)
                return
            client.copy(chosen, destination)
            client.delete_messages(chosen, silent=True)
            client.uid_expunge(chosen) if client.has_capability("UIDPLUS") else client.expunge()

        self._call(f"move messages to the folder {destination!r}", move)

    def folders(self) -> Sequence[str]:
        """The names of every folder of the account."""
        listed = self._call("list folders", lambda c: c.list_folders())
        return [str(name) for _flags, _delimiter, name in listed]


def _parsed(data: Any, uid: int) -> Message:
    body = data.get(b"BODY[]") if isinstance(data, dict) else None
    if not isinstance(body, bytes):
        # Gone between SEARCH and FETCH (expunged by another client), or a server quirk:
        # kept as a message that says so rather than a failure of the whole batch.
        return Message(problems=(f"the server sent no content for UID {uid}",))
    return parse_message(body)


def _failed(what: str, error: Exception) -> NoReturn:
    if isinstance(error, ssl.SSLCertVerificationError):
        raise DeterministicError(f"{what}: its TLS certificate does not verify "
                                 f"({error.verify_message})") from None
    if isinstance(error, socket.timeout | TimeoutError):
        raise TransientError(f"{what}: timed out") from None
    if isinstance(error, ConnectionRefusedError):
        raise TransientError(f"{what}: connection refused") from None
    if isinstance(error, imaplib.IMAP4.abort | OSError):
        raise TransientError(f"{what}: the connection was lost ({_said(error)})") from None
    if isinstance(error, imaplib.IMAP4.error):
        said = _said(error)
        if _BUSY.search(said):
            raise TransientError(f"{what}: the server is busy ({said})") from None
        raise DeterministicError(f"{what}: the server refused ({said})") from None
    raise DeterministicError(f"{what}: {_said(error)}") from None


def _said(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text or type(error).__name__
