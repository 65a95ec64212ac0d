"""Email as bytes: building outgoing messages and parsing incoming ones, with no server.

:mod:`~soloist.integrations.mail.compose` turns a :class:`~.compose.Draft` into an
``EmailMessage`` whose Message-ID comes from the intent's idempotency key, so a message
sent twice after a crash is recognisably the same message (and can be searched for by that
id in the Sent folder). :mod:`~soloist.integrations.mail.parse` turns raw bytes from a
server into a canonical :class:`~soloist.integrations.entities.Message` and never raises:
what it could not read becomes a line in ``Message.problems``.

Only the standard library's ``email`` package is used by those two. The protocol clients
build on them, with plain parameters in (host, port, user, an already resolved password,
a timeout) and every failure raised as Soloist's errors (``TransientError`` to retry,
``DeterministicError`` to fail), never a library exception or a secret:
:mod:`~soloist.integrations.mail.smtp` sends a built message in two calls, ``open()``
(connect and log in: a failure sent nothing) then ``send()``, which raises
:class:`~soloist.errors.OutcomeUnknown` when the connection broke after the message went
out; :mod:`~soloist.integrations.mail.imap` reads new mail by UID against a
``Cursor(uidvalidity, last_uid)``, saves sent messages into the Sent folder and finds a
message there by its Message-ID, which is how an unknown outcome is settled.

On top of them, :mod:`~soloist.integrations.mail.connector` is the ``email`` connector (its
tools and its inbox source), and :mod:`~soloist.integrations.mail.outbox` sends one intent's
message exactly once: ``transmitting`` recorded before DATA, ``dispatched`` after the
``250``, and a send cut short settled through the Sent folder or by a person.
"""
