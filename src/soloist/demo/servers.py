"""The real servers the freelancer pack talks to, on ``127.0.0.1``, and what they hold.

:class:`LocalServers` starts five servers, each on a port the kernel picked, with their
data under one folder (``<workspace>/.servers/`` for ``make demo``): SMTP (aiosmtpd) and
IMAP (pymap) for one mailbox, CalDAV (radicale) with one calendar, a Stripe-compatible
server (localstripe) and a git daemon. It stops them all when it leaves its ``with``
block, and when one of them fails to start, after which it raises
:class:`~soloist.errors.ServerFailed` naming that server and the end of its log.

What it counts is read from the servers themselves (the SMTP server's folder, IMAP over
IMAP, CalDAV over CalDAV, Stripe over its API, git from the bare repositories), never
from Soloist's own records: that is how the demo shows each side effect happened once.

::

    with LocalServers(root / ".servers") as servers:
        remote = servers.create_repository("acme-site")
        ...                                     # point the connectors at servers.smtp...
        assert servers.delivered() == {"<m1@example.test>": 1}
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path
from typing import Self

from soloist.demo.billing import DemoStripeServer, InvoiceEntry
from soloist.demo.calendars import CalDAVServer, CalendarEntry
from soloist.demo.mailboxes import IMAPServer, MailMessage, ReceivedMessage, SMTPServer
from soloist.demo.processes import ProcessServer, Server
from soloist.demo.repositories import CommitEntry, GitServer

__all__ = [
    "CalendarEntry",
    "CommitEntry",
    "InvoiceEntry",
    "LocalServers",
    "MailMessage",
    "ReceivedMessage",
]


class LocalServers:
    """The five servers of the demo, started together, each with a folder under ``folder``.

    The mailbox's address and password serve both SMTP and IMAP (one email connector
    logs in to both); the password is made up at random unless given. What is on disk
    (delivered mail, the calendar, the repositories) stays in ``folder`` after a stop, so
    a new start on the same folder goes on from it; IMAP and Stripe keep theirs in memory.
    """

    def __init__(self, folder: Path, *, mailbox: str = "ada@example.test",
                 password: str | None = None, calendar_user: str = "ada",
                 calendar: str = "work", stripe_key: str = "sk_test_soloist_demo") -> None:
        self.folder = folder
        password = password or secrets.token_urlsafe(12)
        self.smtp = SMTPServer(folder / "smtp", user=mailbox, password=password)
        self.imap = IMAPServer(folder / "imap", user=mailbox, password=password)
        self.caldav = CalDAVServer(folder / "caldav", user=calendar_user, password=password,
                                   calendar=calendar)
        self.stripe = DemoStripeServer(folder / "stripe", api_key=stripe_key)
        self.git = GitServer(folder / "git")

    @property
    def processes(self) -> tuple[ProcessServer, ...]:
        return (self.imap, self.caldav, self.stripe, self.git)

    @property
    def servers(self) -> tuple[Server, ...]:
        return (self.smtp, *self.processes)

    def start(self) -> Self:
        """Start all five (the subprocesses side by side); on a failure stop them all."""
        try:
            self.smtp.start()
            for server in self.processes:
                server.launch()
            for server in self.processes:
                server.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server (each even when stopping another one failed)."""
        failure: BaseException | None = None
        for server in reversed(self.servers):
            try:
                server.stop()
            except BaseException as error:
                failure = failure or error
        if failure is not None:
            raise failure

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a workspace needs ----------------------------------------------------------

    def create_repository(self, name: str, *, branch: str = "main") -> str:
        """A bare repository ``<name>.git`` on the git daemon (kept if it exists); its URL."""
        return self.git.create_repository(name, branch=branch)

    def deliver_to_inbox(self, message: bytes) -> None:
        """Put ``message`` (raw RFC 5322 bytes) into the mailbox's INBOX, unseen: mail from
        the outside world arriving."""
        self.imap.deliver(message, "INBOX")

    # -- what the servers hold -----------------------------------------------------------

    def delivered(self) -> Counter[str | None]:
        """How many times each Message-ID was delivered over SMTP."""
        return self.smtp.delivered()

    def delivered_messages(self) -> list[ReceivedMessage]:
        """Every message delivered over SMTP, oldest first (recipients, headers, text)."""
        return self.smtp.delivered_messages()

    def imap_folder(self, name: str = "INBOX") -> list[MailMessage]:
        """Every message in the mailbox's folder ``name``, by UID."""
        return self.imap.messages(name)

    def calendar_events(self) -> list[CalendarEntry]:
        """Every event of the calendar, read over CalDAV, by UID."""
        return self.caldav.events()

    def invoices(self) -> list[InvoiceEntry]:
        """Every invoice of the Stripe-compatible server, oldest first."""
        return self.stripe.invoices()

    def invoices_sent(self) -> list[dict[str, object]]:
        """Each invoice the billing server emailed to its customer, in order."""
        return list(self.stripe.sent())

    def commits(self, repository: str, branch: str = "main") -> list[CommitEntry]:
        """The commits of ``branch`` in the bare repository, newest first, with trailers
        (``Soloist-Intent``)."""
        return self.git.commits(repository, branch)
