"""A real IMAP server (``pymap``, in-memory ``dict`` backend) on ``127.0.0.1``.

The demo's :class:`~soloist.demo.mailboxes.IMAPServer` with a test user: ``pymap`` as a
subprocess (its console script's ``main``, under this interpreter), one user and password,
plaintext LOGIN with no TLS, nothing on disk but its log (in a temporary folder), everything
gone when it stops. At start it creates the ``Sent`` folder (pymap's dict backend starts a
user with ``INBOX`` only unless given its demo data, which is not loaded).

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

from soloist.demo.mailboxes import IMAPServer

__all__ = ["IMAPTestServer"]


class IMAPTestServer(IMAPServer):
    """``pymap`` (dict backend) as a subprocess on ``127.0.0.1`` and a free port."""

    def __init__(self, *, user: str = "reader@example.test", password: str = "s3cret") -> None:
        super().__init__(user=user, password=password)
