"""Sending an email exactly once, over SMTP, which cannot deduplicate.

The message's Message-ID comes from the intent's idempotency key, so every attempt at one
intent sends the same message. Around the SMTP transaction the intent's row says how far
a send got:

* ``pending``: nothing went out. The send opens SMTP (connect and log in: a failure there
  sent nothing), gives the envelope, and once the server answered ``354`` to DATA, before
  any byte of the message leaves, waits for its turn of the connector's rate limit
  (booked before it connected), then records ``transmitting`` in a transaction of its own;
* after the ``250`` it records ``dispatched`` with its result (which also writes the
  dispatch ledger), then files the message in the Sent folder, as mail clients do; a
  failed filing is logged, not a failure of the send;
* a definite refusal of the message (an answer to the end of DATA) puts it back to
  ``pending``; a connection lost after the data went out leaves it ``transmitting``.

A send that finds its intent ``dispatched`` returns what was recorded and sends nothing. One
that finds it ``transmitting`` (the process stopped mid-send, or the reply never came)
reconciles: the Message-ID in the Sent folder proves the message went (some providers file
what their SMTP relays, and this module files it right after the ``250``); anything else
proves nothing, and the step goes to a person (:class:`~soloist.errors.Unconfirmed`), who
either sends it again or records it as sent. Never a silent second copy, never a silent loss.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from soloist.errors import (
    BreakerOpen,
    OutcomeUnknown,
    SoloistError,
    StepFailure,
    TransientError,
    Unconfirmed,
    describe,
)
from soloist.execution.context import ToolCall
from soloist.integrations.guard import Guard
from soloist.integrations.mail import compose
from soloist.integrations.mail.imap import IMAPClient
from soloist.integrations.mail.smtp import SendReply, SMTPClient
from soloist.orchestration.lifecycle import IntentStatus
from soloist.store.base import IntentRow, Store

_log = logging.getLogger(__name__)


def _unknown(error: BaseException) -> bool:
    """Whether the message may have gone out (also when that opened the breaker)."""
    return isinstance(error, OutcomeUnknown) or (
        isinstance(error, BreakerOpen) and isinstance(error.__cause__, OutcomeUnknown))


def _utc(ts: float | None) -> str:
    if ts is None:
        return "an unknown time"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sent_result(message_id: str, *, reply: str | None, uid: int | None,
                reconciled: bool) -> dict[str, Any]:
    return {"message_id": message_id, "accepted": True, "reply": reply,
            "sent_folder_uid": uid, "reconciled": reconciled}


@dataclass(frozen=True)
class Outbox:
    """What a send needs: the store (the intent's row), the connector's guard, and how to
    reach its servers (``imap`` gives ``None`` without an IMAP account)."""

    name: str
    store: Store
    guard: Guard
    smtp: Callable[[], SMTPClient]
    imap: Callable[[], IMAPClient | None]
    sent_folder: str

    def send(self, draft: compose.Draft, call: ToolCall | None) -> dict[str, Any]:
        """Send ``draft`` once for ``call``'s intent (see the module's docstring); with no
        call, or a key no intent has (direct use from Python), it just sends."""
        if call is None:
            return self._transmit(draft, f"direct-{secrets.token_hex(8)}", bookkeeping=False)
        key = call.idempotency_key
        if call.status == IntentStatus.PENDING:
            return self._transmit(draft, key, bookkeeping=True)  # the dispatch read it so
        with self.store.read() as tx:
            intent = tx.intents.get(key)
        if intent is None:
            return self._transmit(draft, key, bookkeeping=False)
        if intent.status == IntentStatus.DISPATCHED and isinstance(intent.result, dict):
            return intent.result
        if intent.status == IntentStatus.TRANSMITTING:
            return self._reconcile(draft, key, intent)
        return self._transmit(draft, key, bookkeeping=True)

    # -- sending -----------------------------------------------------------------------

    def _transmit(self, draft: compose.Draft, key: str, *, bookkeeping: bool
                  ) -> dict[str, Any]:
        message = compose.render(draft, key)
        message_id = message.message_id
        envelope = compose.recipients(draft)
        marked = False
        # Booked before connecting: a turn that is not coming soon costs no log-in.
        turn = self.guard.book(key) if bookkeeping else None

        def before_data() -> None:
            # The rate limit's turn is waited for here, as late as can be, so the relay
            # sees the sends spaced as the turns are; and before the mark, so a process
            # that stops while it waits leaves nothing that looks half sent.
            nonlocal marked
            self.guard.wait_turn(turn)
            with self.store.transaction() as tx:
                moved = tx.intents.mark(key, IntentStatus.TRANSMITTING,
                                        expect=[IntentStatus.PENDING], now=time.time())
            if not moved:
                # Another dispatch of the same intent got here first: its outcome is
                # settled by the next attempt, which reconciles.
                raise TransientError(f"the email {message_id} is already being sent by "
                                     "another attempt; not sending it twice")
            marked = True
            self.guard.wait_turn(turn)  # a mark that took long missed the turn: book anew

        try:
            reply = self._round_trip(key, lambda client: client.send(
                message, draft.sender.email, envelope,
                before_data=before_data if bookkeeping else None), turn=not bookkeeping)
        except Exception as error:
            if marked and not _unknown(error):
                # The server answered the end of DATA with a refusal: nothing was taken.
                with self.store.transaction() as tx:
                    tx.intents.mark(key, IntentStatus.PENDING,
                                    expect=[IntentStatus.TRANSMITTING], now=time.time())
            raise
        result = sent_result(message_id, reply=f"{reply.code} {reply.text}", uid=None,
                             reconciled=False)
        if bookkeeping:
            try:
                with self.store.transaction() as tx:
                    tx.intents.record_result(key, IntentStatus.DISPATCHED, result, None,
                                             time.time())
            except BaseException:
                # Filed in Sent all the same, the next attempt can prove it was sent.
                self._file(message)
                raise
        result["sent_folder_uid"] = self._file(message)
        return result

    def _round_trip(self, key: str, send: Callable[[SMTPClient], SendReply], *,
                    turn: bool) -> SendReply:
        """``send`` on an open connection, inside the guard (``turn``: the guard takes the
        rate limit's turn before ``send``; else ``send`` takes it right before the data).
        A failure to open (which sent nothing) still goes through the guard, so the
        breaker counts it."""
        client = self.smtp()
        try:
            client.open()
        except StepFailure as error:
            refused = error

            def failed() -> SendReply:
                raise refused

            return self.guard.call(key, failed, turn=False)
        try:
            return self.guard.call(key, lambda: send(client), turn=turn)
        finally:
            client.close()

    def _file(self, message: compose.Outgoing) -> int | None:
        """Save the sent message into the Sent folder; its UID there, when known."""
        try:
            imap = self.imap()
            if imap is None:
                return None
            with imap:
                return imap.append_sent(message.data, self.sent_folder)
        except SoloistError as error:
            _log.warning("connector %s sent %s but could not file it in %s: %s", self.name,
                         message.message_id, self.sent_folder, describe(error))
            return None

    # -- after a send that was cut short -----------------------------------------------

    def _reconcile(self, draft: compose.Draft, key: str, intent: IntentRow
                   ) -> dict[str, Any]:
        message_id = compose.message_id_for(key, draft.sender)
        imap = self.imap()
        if imap is not None:
            with imap:
                uids = imap.search_message_id(message_id, self.sent_folder)
            if uids:
                result = sent_result(message_id, reply=None, uid=uids[0], reconciled=True)
                with self.store.transaction() as tx:
                    tx.intents.record_result(key, IntentStatus.DISPATCHED, result, None,
                                             time.time())
                return result
        where = (f"it is not in the folder {self.sent_folder}" if imap is not None
                 else "there is no IMAP account to look for it in")
        raise Unconfirmed(
            f"the process stopped while this email ({message_id}, to "
            f"{', '.join(compose.recipients(draft))}) was being sent at "
            f"{_utc(intent.dispatched_at)} and {where}: send again, or mark as sent?")
