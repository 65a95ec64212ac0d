"""The billing connector (``kind = "billing"``): Stripe invoices as tools, its webhooks in.

For a connector named ``billing``:

- ``billing.create_customer(email, name)`` and ``billing.create_invoice(customer_email,
  lines, ...)`` write once per idempotency key: the key goes in the ``Idempotency-Key``
  header and in the object's metadata, which is looked up before creating (a server that
  ignores the header still makes one). An invoice's customer is the one created under the
  same key, else the newest with that email, else a new one under the key. Creating an
  invoice is compensated by ``billing.discard``: an open invoice is voided, a draft
  deleted (Stripe cannot void a draft);
- ``billing.finalize(id)``, ``billing.send(id)``, ``billing.void(id)`` write;
  ``billing.invoice(id)`` reads. Each answers the canonical Invoice.

A ``429`` makes the step wait (:class:`~soloist.errors.Throttled`, no attempt spent).

Webhooks come in at ``/hooks/NAME`` when ``webhook_secret`` is set: the
``Stripe-Signature`` header is checked against the raw body (300 s tolerance), the
Stripe event id is the delivery id (the backlog takes it once), and the topic is
``billing.`` and the event type (``billing.invoice.paid``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import (
    Annotated,
    Any,
    NotRequired,  # pydantic needs it before 3.12
    cast,
)

from pydantic import Field
from typing_extensions import TypedDict

from soloist.config.connectors import BillingConnector as BillingSettings
from soloist.errors import InvalidPayload
from soloist.execution.context import ToolCall
from soloist.integrations import webhooks
from soloist.integrations.billing.stripe_client import (
    Customer,
    StripeBillingClient,
    invoice_from,
)
from soloist.integrations.connector import Action, Connector, Received
from soloist.integrations.entities import Contact, InvoiceLine, load

TOPIC_PREFIX = "billing."


class LineArgs(TypedDict):
    """An invoice line as a tool argument (a plain mapping: what is staged is JSON)."""

    description: NotRequired[str]
    quantity: Annotated[int, Field(ge=0)]
    unit_amount: int


class BillingConnector(Connector):
    kind = "billing"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = cast(BillingSettings, self.section)

    def client(self) -> StripeBillingClient:
        """A client of the configured account; close it after use."""
        return StripeBillingClient(api_key=(self.secret(self.settings.api_key) or ""),
                                   base_url=self.settings.base_url,
                                   timeout=self.settings.timeout)

    # -- actions -------------------------------------------------------------------------

    def actions(self) -> Sequence[Action]:
        return (
            Action("create_customer", self.create_customer, "write", idempotent=True),
            Action("create_invoice", self.create_invoice, "write", idempotent=True,
                   compensate=("discard", {"id": "{{ result.id }}"})),
            Action("discard", self.discard, "write", idempotent=True),
            Action("finalize", self.finalize, "write", idempotent=True),
            Action("send", self.send, "write", tags=("external-communication",)),
            Action("void", self.void, "write", idempotent=True),
            Action("invoice", self.invoice),
        )

    def create_customer(self, email: str, *, call: ToolCall,
                        name: str | None = None) -> dict[str, Any]:
        """Create a customer, once per idempotency key (a replay returns the first)."""
        contact = load(Contact, {"email": email, "name": name or ""})
        with self.client() as stripe:
            return _customer(stripe.create_customer(contact, key=call.idempotency_key))

    def create_invoice(self, customer_email: str, lines: list[LineArgs], *,
                       call: ToolCall, description: str | None = None,
                       customer_name: str | None = None) -> dict[str, Any]:
        """Create a draft invoice with its lines for a customer (found by email, or made),
        once per idempotency key."""
        key = call.idempotency_key
        items = [load(InvoiceLine, line) for line in lines]
        contact = load(Contact, {"email": customer_email, "name": customer_name or ""})
        with self.client() as stripe:
            customer = (stripe.find_customer(contact.email, key=key)
                        or stripe.find_customer(contact.email)
                        or stripe.create_customer(contact, key=key))
            invoice = stripe.create_invoice(customer.id, items, currency=self.settings.currency,
                                            key=key, description=description)
            return invoice.model_dump(mode="json")

    def discard(self, id: str, *, call: ToolCall) -> dict[str, Any]:
        """Undo an invoice: void it if it is open, delete it if it is a draft."""
        with self.client() as stripe:
            current = stripe.lookup(id)
            if current is None or current.status == "draft":
                gone = current is not None and stripe.delete_draft(id)
                return {"id": id, "status": "deleted", "deleted": gone}
            voided = stripe.void(id, key=call.idempotency_key)
            return {**voided.model_dump(mode="json"), "deleted": False}

    def finalize(self, id: str, *, call: ToolCall) -> dict[str, Any]:
        """Make a draft invoice open (payable); one past draft is returned as it is."""
        with self.client() as stripe:
            return stripe.finalize(id, key=call.idempotency_key).model_dump(mode="json")

    def send(self, id: str, *, call: ToolCall) -> dict[str, Any]:
        """Have the billing system email an open invoice to its customer."""
        with self.client() as stripe:
            return stripe.send(id, key=call.idempotency_key).model_dump(mode="json")

    def void(self, id: str, *, call: ToolCall) -> dict[str, Any]:
        """Void an open invoice; a void one is returned as it is."""
        with self.client() as stripe:
            return stripe.void(id, key=call.idempotency_key).model_dump(mode="json")

    def invoice(self, id: str) -> dict[str, Any]:
        """The invoice as it is now."""
        with self.client() as stripe:
            return stripe.retrieve(id).model_dump(mode="json")

    # -- webhooks and test ---------------------------------------------------------------

    def hook(self) -> BillingHook | None:
        if self.settings.webhook_secret is None:
            return None
        return BillingHook(self)

    def test(self) -> str:
        with self.client() as stripe:
            stripe.find_customer("soloist-connector-test@example.invalid")
            return f"authenticated to the billing server {stripe.base_url}"


class BillingHook:
    """Stripe's webhook deliveries for one billing connector."""

    def __init__(self, connector: BillingConnector) -> None:
        self.connector = connector

    @property
    def path(self) -> str:
        return self.connector.name

    def accept(self, headers: Mapping[str, str], body: bytes, now: float) -> Received:
        secret = (self.connector.secret(self.connector.settings.webhook_secret) or "")
        webhooks.verify_headers(body, headers, [secret], now=now,
                                tolerance=webhooks.DEFAULT_TOLERANCE, scheme=webhooks.STRIPE)
        event = _event(body)
        obj = event["data"]["object"]
        payload: dict[str, Any] = {"connector": self.connector.name,
                                   "event_id": event["id"], "type": event["type"]}
        if obj.get("object") == "invoice":
            payload["invoice"] = invoice_from(obj).model_dump(mode="json")
        else:
            payload["object"] = obj
        return Received(event["id"], TOPIC_PREFIX + event["type"], payload, None)


def _event(body: bytes) -> dict[str, Any]:
    """The Stripe event of a delivery, or InvalidPayload naming what is missing."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload("the billing webhook's body is not JSON",
                             entity="StripeEvent", field="body") from None
    if not isinstance(event, dict):
        raise InvalidPayload("the billing webhook's body is not a JSON object",
                             entity="StripeEvent", field="body")
    for field in ("id", "type"):
        if not isinstance(event.get(field), str) or not event[field]:
            raise InvalidPayload(f"the billing webhook's event has no {field}",
                                 entity="StripeEvent", field=field)
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidPayload("the billing webhook's event has no data.object",
                             entity="StripeEvent", field="data.object")
    return cast(dict[str, Any], event)


def _customer(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "email": customer.contact.email, "name": customer.contact.name,
            "metadata": customer.metadata}
