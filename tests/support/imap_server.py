"""A real IMAP server (``pymap``, in-memory ``dict`` backend) on ``127.0.0.1``.

``pymap`` runs as a subprocess (its console script's ``main``, under this interpreter):
one user and password, plaintext LOGIN with no TLS (``--no-tls``), nothing on disk,
everything gone when it stops. At start the
harness creates the ``Sent`` folder (pymap's dict backend starts a user with ``INBOX``
only unless given its demo data, which this harness does not load).

:meth:`IMAPTestServer.deliver` puts a message into a folder (an IMAP APPEND, the way an
MTA's delivery would look to a reader); :meth:`IMAPTestServer.folder_messages` reads a
folder back (raw bytes by UID), e.g. to check what a connector saved into ``Sent``.

::

    with IMAPTestServer() as imap:
        imap.deliver(b"From: a@x\\r\\nMessage-ID: <1@x>\\r\\n\\r\\nhi\\r\\n")
        with IMAPClient(imap.host, imap.port, ssl=False) as client:
            client.login(imap.user, imap.password)
"""

from __future__ import annotations

import sys

from imapclient import IMAPClient

from support.netutil import ProcessServer

__all__ = ["IMAPTestServer"]


class IMAPTestServer(ProcessServer):
    """``pymap`` (dict backend) as a subprocess on ``127.0.0.1`` and a free port."""

    prefix = "soloist-imap-"
    log_name = "pymap.log"

    def __init__(self, *, user: str = "reader@example.test", password: str = "s3cret") -> None:
        super().__init__()
        self.user = user
        self.password = password

    def command(self) -> list[str]:
        return [
            sys.executable, "-c", "from pymap.main import main; main()",
            "--host", self.host, "--port", str(self.port), "--no-tls",
            # Only the IMAP service: the admin (gRPC) service would listen on a fixed port.
            "--no-service", "admin", "--no-service", "managesieve", "--no-service", "swim",
            "dict", "--demo-user", self.user, "--demo-password", self.password,
        ]  # fmt: skip

    def ready(self) -> None:
        with self.client() as client:
            client.create_folder("Sent")

    def client(self) -> IMAPClient:
        """A logged-in ``imapclient`` connection (use it as a context manager)."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, message: bytes, folder: str = "INBOX") -> None:
        """Put ``message`` (raw RFC 5322 bytes) into ``folder``, unseen."""
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
