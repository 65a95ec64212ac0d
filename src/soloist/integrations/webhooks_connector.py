"""The ``webhook`` connector: signed deliveries in at ``/hooks/PATH``, signed posts out.

In (:class:`WebhookHook`): a delivery must carry a ``Soloist-Signature`` that signs its raw
body with the connector's ``secret`` (HMAC-SHA256, see :mod:`soloist.integrations.webhooks`)
at a time within ``tolerance`` of now, and a delivery id in ``dedupe_header``; it becomes a
``webhook.received`` event with the body (JSON when it parses, else the text) and a few
headers that say nothing secret. Storing it, once per delivery id, is the receiver's
(:mod:`soloist.integrations.hooks`).

Out (``NAME.post``, with ``url`` set): the data as a JSON body, signed the same way, with
the intent's key as ``Idempotency-Key`` and as the delivery id, so a receiver that
deduplicates sees one delivery however often the step ran. ``2xx`` is done; ``429`` makes
the step wait (``Retry-After``) without spending an attempt; ``5xx``, a timeout or a
connection that fails are transient; any other answer is deterministic.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from soloist import jsonvalues
from soloist.config.connectors import WebhookConnector as WebhookSettings
from soloist.control.providers import parse_retry_after
from soloist.errors import (
    DeterministicError,
    InputError,
    InvalidPayload,
    Throttled,
    TransientError,
)
from soloist.execution.context import ToolCall
from soloist.integrations.connector import Action, Connector, Context, Hook, Received
from soloist.integrations.webhooks import header, signed_headers, verify_headers

__all__ = ["WebhookConnector", "WebhookHook"]

TOPIC = "webhook.received"
EVENT_HEADER = "Soloist-Event"
#: headers kept with a received event: what the sender is and says, never a credential
SAFE_HEADERS = ("Content-Type", "User-Agent", EVENT_HEADER)
#: a 429 without a usable Retry-After waits this long
DEFAULT_RETRY_AFTER = 1.0


class WebhookHook:
    """How one webhook connector takes a delivery (the :class:`Hook` protocol)."""

    def __init__(self, connector: str, path: str, secret: Callable[[], str],
                 tolerance: float, dedupe_header: str) -> None:
        self.connector = connector
        self.path = path
        self._secret = secret  # read per delivery: a rotated secret applies at once
        self.tolerance = tolerance
        self.dedupe_header = dedupe_header

    def accept(self, headers: Mapping[str, str], body: bytes, now: float) -> Received:
        verify_headers(body, headers, [self._secret()], now=now, tolerance=self.tolerance)
        delivery = (header(headers, self.dedupe_header) or "").strip()
        if not delivery or len(delivery) > 200:
            raise InvalidPayload(f"the delivery has no {self.dedupe_header} header (its id, "
                                 "at most 200 characters)", entity="webhook delivery",
                                 field=self.dedupe_header)
        kept = {name: value for name in (*SAFE_HEADERS, self.dedupe_header)
                if (value := header(headers, name)) is not None}
        return Received(delivery_id=delivery, topic=TOPIC, payload={
            "connector": self.connector, "delivery_id": delivery, "body": _body(body),
            "headers": kept}, cursor=None)


def _body(body: bytes) -> Any:
    """The body as JSON when it is JSON, else as text; refused when it is neither."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"the body is not UTF-8 text (byte {exc.start})",
                             entity="webhook delivery", field="body") from None
    try:
        return jsonvalues.loads(text, "the body")
    except json.JSONDecodeError:
        return text
    except InputError as exc:
        raise InvalidPayload(exc.message, entity="webhook delivery", field="body") from None


def retry_after(value: str | None, now: float) -> float:
    """Seconds a ``Retry-After`` header (seconds, or an HTTP date) asks to wait."""
    seconds = parse_retry_after({"Retry-After": value} if value else None, now=now)
    return DEFAULT_RETRY_AFTER if seconds is None else seconds


class WebhookConnector(Connector):
    kind = "webhook"
    section: WebhookSettings

    def __init__(self, name: str, section: WebhookSettings, context: Context) -> None:
        super().__init__(name, section, context)
        self.section = section
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        return self.section.path or self.name

    def _secret(self) -> str:
        value = self.secret(self.section.secret)
        assert value is not None  # a required setting
        return value

    def hook(self) -> Hook:
        return WebhookHook(self.name, self.path, self._secret, float(self.section.tolerance),
                           self.section.dedupe_header)

    def actions(self) -> Sequence[Action]:
        if self.section.url is None:
            return ()
        return (Action("post", self.post, "write", idempotent=True),)

    def post(self, data: Any, call: ToolCall, event: str | None = None) -> dict[str, Any]:
        """POST data as a signed JSON delivery to the connector's url."""
        return self._deliver(data, event, call.idempotency_key)

    def _deliver(self, data: Any, event: str | None, key: str) -> dict[str, Any]:
        url = self.section.url
        if url is None:
            raise DeterministicError(f"connector {self.name} has no url to post to")
        if event is not None and (not event.strip() or any(c in event for c in "\r\n\x00")):
            raise DeterministicError("the event name must be one non-empty line")
        try:
            body = json.dumps(data, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise DeterministicError(f"the data to post is not JSON: {exc}") from None
        headers = {"Content-Type": "application/json", "User-Agent": "soloist-webhook",
                   **signed_headers(body, [self._secret()], now=time.time(),
                                    idempotency_key=key),
                   self.section.dedupe_header: key}
        if event is not None:
            headers[EVENT_HEADER] = event
        try:
            response = self._client().post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(f"POST {url} did not answer within "
                                 f"{self.section.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot POST to {url}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return {"status": status, "url": url}
        reason = response.reason_phrase or "no reason"
        if status == 429:
            raise Throttled(f"POST {url} answered 429 {reason}: waiting as it asks",
                            retry_after=retry_after(response.headers.get("Retry-After"),
                                                    time.time()))
        if status >= 500 or status == 408:
            raise TransientError(f"POST {url} answered {status} {reason}")
        raise DeterministicError(f"POST {url} answered {status} {reason}")

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self.section.timeout,
                                          follow_redirects=False)
            return self._http

    def test(self) -> str:
        if self.section.url is None:
            return (f"connector {self.name} only receives: deliveries are taken at "
                    f"/hooks/{self.path}")
        answer = self.guard.call(f"test-{secrets.token_hex(6)}", lambda: self._deliver(
            {"ping": True}, "ping", f"ping-{secrets.token_hex(8)}"))
        return f"a signed ping to {self.section.url} was answered {answer['status']}"

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()
