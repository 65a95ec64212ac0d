"""Email as bytes: building outgoing messages and parsing incoming ones, with no server.

:mod:`~soloist.integrations.mail.compose` turns a :class:`~.compose.Draft` into an
``EmailMessage`` whose Message-ID comes from the intent's idempotency key, so a message
sent twice after a crash is recognisably the same message (and can be searched for by that
id in the Sent folder). :mod:`~soloist.integrations.mail.parse` turns raw bytes from a
server into a canonical :class:`~soloist.integrations.entities.Message` and never raises:
what it could not read becomes a line in ``Message.problems``.

Only the standard library's ``email`` package is used; the SMTP and IMAP connectors build
on these two modules.
"""
