"""The Stripe billing client: the official ``stripe`` SDK, one ``StripeClient`` per connector.

:class:`StripeBillingClient` takes plain parameters (the API key, already resolved from its
``secret:NAME``; a ``base_url`` for a local Stripe-compatible server; a timeout) and never
touches the SDK's global ``stripe.api_key``, so two connectors with two accounts can live
in one process. The SDK's own retries are off (``max_network_retries=0``): it would retry
connection errors, ``409`` and ``5xx`` with an ``Idempotency-Key`` of its own, which a
server that ignores that header turns into a second invoice; Soloist retries through its
own step bookkeeping instead, with the intent's key.

Exactly once, against servers that do not help. Every create takes the intent's ``key``
and sends it twice: as the ``Idempotency-Key`` header (Stripe honours it for 24 hours) and
in the object's metadata as ``soloist_intent``. Before creating, the client lists the
objects that could be the one (customers by email, invoices and pending invoice items by
customer) and returns the one carrying the key, so a retry after a crash, or against a
server that ignores the header (localstripe, see tests/support/README.md), finds what the
first attempt made instead of making it again. An invoice's lines are created as pending
invoice items first, each tagged with the key and its index, so a retry after a crash
between two lines creates only the missing ones. Stripe puts every pending item of the
customer on the next invoice, so invoices for one customer must not be created
concurrently (the connector's concurrency slot is the place to say so).

A line's ``quantity`` and ``unit_amount`` are sent as one ``amount`` (localstripe refuses
``quantity``; Stripe accepts both) and kept in the item's metadata, from which
:func:`invoice_from` reads them back; lines made elsewhere map from Stripe's own fields.

Finalize and send are Stripe's endpoints. localstripe has neither (``404``): against it
they fail deterministically with a sentence saying so, while an invoice that is already
past draft is returned as it is without a call (so finalize is idempotent and a replay
never asks again). ``void`` is the compensation of a create; it is idempotent too (a void
invoice is returned as it is), and a draft, which Stripe cannot void, is refused with a
sentence rather than sent to the server.

Failures become Soloist's errors: a refused key (``401``) is a deterministic "cannot
authenticate" sentence; ``429`` is :class:`~soloist.errors.Throttled` (a wait that spends
no attempt) with the ``Retry-After`` the server sent (or ``None``: Stripe usually sends
none); ``5xx``, a lock
timeout (``409``), a refused connection or a timeout are transient; every other ``4xx``
is deterministic and carries the server's message; a payload that does not map to an
:class:`~soloist.integrations.entities.Invoice` is :class:`~soloist.errors.InvalidPayload`.
No message ever holds the API key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import stripe
from stripe.params import CustomerCreateParams, InvoiceCreateParams, InvoiceItemCreateParams

from soloist.errors import DeterministicError, SoloistError, Throttled, TransientError
from soloist.integrations.entities import Contact, Invoice, InvoiceLine, load

__all__ = ["INTENT_METADATA", "Customer", "StripeBillingClient", "invoice_from", "translate"]

#: the metadata key that carries the intent's idempotency key on every object created
INTENT_METADATA = "soloist_intent"
_LINE = "soloist_line"
_QUANTITY = "soloist_quantity"
_UNIT_AMOUNT = "soloist_unit_amount"
_PAGE = 100  # Stripe's largest page

T = TypeVar("T")


@dataclass(frozen=True)
class Customer:
    """A billing customer: its provider id and who it is."""

    id: str
    contact: Contact
    metadata: dict[str, str] = field(default_factory=dict)


class StripeBillingClient:
    """Stripe's API for one connector. Close it (or use ``with``) to release its
    connection pool."""

    def __init__(self, *, api_key: str, base_url: str | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = (base_url or "https://api.stripe.com").rstrip("/")
        self._http = stripe.RequestsClient(timeout=timeout)
        self._stripe = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.base_url},
            http_client=self._http,
            max_network_retries=0,
        )

    def close(self) -> None:
        self._http.close()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- customers -------------------------------------------------------------------------

    def find_customer(self, email: str, *, key: str | None = None) -> Customer | None:
        """The customer with this email (the one created under ``key``, when given; else
        the first the server lists: Stripe lists the newest first), or ``None``."""
        found = self._call(f"list customers by {email}", lambda: [
            customer.to_dict() for customer in self._stripe.v1.customers.list(
                params={"email": email, "limit": _PAGE}).auto_paging_iter()])
        if key is not None:
            found = [c for c in found if _metadata(c).get(INTENT_METADATA) == key]
        return _customer(found[0]) if found else None

    def create_customer(self, contact: Contact, *, key: str) -> Customer:
        """A customer for ``contact``, once per ``key``: a replay returns the first one."""
        existing = self.find_customer(contact.email, key=key)
        if existing is not None:
            return existing
        params: CustomerCreateParams = {
            "email": contact.email, "metadata": {INTENT_METADATA: key}}
        if contact.name:
            params["name"] = contact.name
        created = self._call(f"create a customer for {contact.email}", lambda: (
            self._stripe.v1.customers.create(params=params, options={"idempotency_key": key})))
        return _customer(created.to_dict())

    # -- invoices --------------------------------------------------------------------------

    def create_invoice(self, customer: str, lines: Sequence[InvoiceLine], *, currency: str,
                       key: str, description: str | None = None) -> Invoice:
        """A draft invoice for ``customer`` with ``lines``, once per ``key``."""
        existing = self._invoice_with_key(customer, key)
        if existing is not None:
            return invoice_from(self._complete(existing))
        pending = self._call(f"list the pending invoice items of {customer}", lambda: [
            item.to_dict() for item in self._stripe.v1.invoice_items.list(
                params={"customer": customer, "limit": _PAGE}).auto_paging_iter()])
        made = {_metadata(item).get(_LINE) for item in pending
                if _metadata(item).get(INTENT_METADATA) == key and not item.get("invoice")}
        for index, line in enumerate(lines):
            if str(index) not in made:
                self._create_item(customer, line, index, currency=currency, key=key)
        params: InvoiceCreateParams = {
            "customer": customer, "metadata": {INTENT_METADATA: key},
            # Stripe's default is "exclude" since API 2022-08-01: the lines would be left
            # pending for the next invoice.
            "pending_invoice_items_behavior": "include"}
        if description:
            params["description"] = description
        created = self._call(f"create an invoice for {customer}", lambda: (
            self._stripe.v1.invoices.create(params=params, options={"idempotency_key": key})))
        if _metadata(created.to_dict()).get(INTENT_METADATA) != key:
            # localstripe drops an invoice's metadata on create; its lines still carry the
            # key (found by _made_under), this makes a line-less invoice findable too.
            created = self._call(f"tag invoice {created.id} with its intent", lambda: (
                self._stripe.v1.invoices.update(
                    created.id, params={"metadata": {INTENT_METADATA: key}})))
        return invoice_from(self._complete(created.to_dict()))

    def retrieve(self, invoice_id: str) -> Invoice:
        """The invoice as it is now."""
        return invoice_from(self._complete(self._retrieve(invoice_id).to_dict()))

    def finalize(self, invoice_id: str, *, key: str) -> Invoice:
        """Make a draft invoice open (payable); one that is past draft is returned as is."""
        current = self._retrieve(invoice_id)
        if current.status != "draft":
            return invoice_from(self._complete(current.to_dict()))
        finalized = self._call(f"finalize invoice {invoice_id}", lambda: (
            self._stripe.v1.invoices.finalize_invoice(
                invoice_id, options={"idempotency_key": f"{key}/finalize"})))
        return invoice_from(self._complete(finalized.to_dict()))

    def send(self, invoice_id: str, *, key: str) -> Invoice:
        """Have the billing system email the invoice to its customer (an open invoice)."""
        current = self._retrieve(invoice_id)
        if current.status == "draft":
            raise DeterministicError(f"invoice {invoice_id} is a draft: finalize it before "
                                     "sending it")
        sent = self._call(f"send invoice {invoice_id}", lambda: (
            self._stripe.v1.invoices.send_invoice(
                invoice_id, options={"idempotency_key": f"{key}/send"})))
        return invoice_from(self._complete(sent.to_dict()))

    def void(self, invoice_id: str, *, key: str) -> Invoice:
        """Void an open invoice (the compensation of creating it); a void one is returned
        as is."""
        current = self._retrieve(invoice_id)
        if current.status == "void":
            return invoice_from(self._complete(current.to_dict()))
        if current.status == "draft":
            raise DeterministicError(f"invoice {invoice_id} is a draft, which cannot be "
                                     "voided: only an open invoice can")
        voided = self._call(f"void invoice {invoice_id}", lambda: (
            self._stripe.v1.invoices.void_invoice(
                invoice_id, options={"idempotency_key": f"{key}/void"})))
        return invoice_from(self._complete(voided.to_dict()))

    def lookup(self, invoice_id: str) -> Invoice | None:
        """The invoice as it is now, or ``None`` when the server has none by that id."""
        found = self._find(invoice_id)
        return None if found is None else invoice_from(self._complete(found.to_dict()))

    def delete_draft(self, invoice_id: str) -> bool:
        """Delete a draft invoice (Stripe deletes drafts; it voids only open ones), the
        compensation of creating one; ``False`` when it was already gone."""
        current = self._find(invoice_id)
        if current is None:
            return False
        if current.status != "draft":
            raise DeterministicError(f"invoice {invoice_id} is {current.status}, not a draft: "
                                     "only a draft can be deleted")
        self._call(f"delete invoice {invoice_id}", lambda: (
            self._stripe.v1.invoices.delete(invoice_id)))
        return True

    # -- helpers ---------------------------------------------------------------------------

    def _find(self, invoice_id: str) -> stripe.Invoice | None:
        try:
            return self._stripe.v1.invoices.retrieve(invoice_id)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise translate(error, f"retrieve invoice {invoice_id}", self.base_url) from None
        except stripe.StripeError as error:
            raise translate(error, f"retrieve invoice {invoice_id}", self.base_url) from None

    def _retrieve(self, invoice_id: str) -> stripe.Invoice:
        return self._call(f"retrieve invoice {invoice_id}", lambda: (
            self._stripe.v1.invoices.retrieve(invoice_id)))

    def _complete(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """``invoice`` with all its lines: an invoice object carries only the first page."""
        lines = invoice.get("lines")
        if not (isinstance(lines, Mapping) and lines.get("has_more")):
            return invoice
        invoice_id = str(invoice.get("id"))
        data = self._call(f"list the lines of invoice {invoice_id}", lambda: [
            line.to_dict() for line in self._stripe.v1.invoices.line_items.list(
                invoice_id, params={"limit": _PAGE}).auto_paging_iter()])
        return {**invoice, "lines": {**lines, "data": data, "has_more": False}}

    def _invoice_with_key(self, customer: str, key: str) -> dict[str, Any] | None:
        invoices = self._call(f"list the invoices of {customer}", lambda: [
            invoice.to_dict() for invoice in self._stripe.v1.invoices.list(
                params={"customer": customer, "limit": _PAGE}).auto_paging_iter()])
        return _first(invoices, lambda invoice: _made_under(invoice, key))

    def _create_item(self, customer: str, line: InvoiceLine, index: int, *, currency: str,
                     key: str) -> None:
        params: InvoiceItemCreateParams = {
            "customer": customer, "currency": currency.lower(), "amount": line.amount,
            "metadata": {INTENT_METADATA: key, _LINE: str(index),
                         _QUANTITY: str(line.quantity), _UNIT_AMOUNT: str(line.unit_amount)}}
        if line.description:
            params["description"] = line.description
        self._call(f"add line {index + 1} to the invoice for {customer}", lambda: (
            self._stripe.v1.invoice_items.create(
                params=params, options={"idempotency_key": f"{key}/line/{index}"})))

    def _call(self, doing: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except stripe.StripeError as error:
            raise translate(error, doing, self.base_url) from None


def _first(items: Iterable[T], wanted: Callable[[T], bool]) -> T | None:
    return next((item for item in items if wanted(item)), None)


def _made_under(invoice: Mapping[str, Any], key: str) -> bool:
    """Whether ``invoice`` is the one created under ``key``: by its own metadata or by a
    line made from one of the intent's invoice items."""
    if _metadata(invoice).get(INTENT_METADATA) == key:
        return True
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, Mapping) else None
    return any(isinstance(line, Mapping) and _metadata(line).get(INTENT_METADATA) == key
               for line in data or ())


def _metadata(payload: Mapping[str, Any]) -> dict[str, str]:
    metadata = payload.get("metadata")
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, Mapping) else {}


def _customer(payload: Mapping[str, Any]) -> Customer:
    contact = load(Contact, {"email": payload.get("email") or "",
                             "name": payload.get("name") or ""})
    return Customer(id=str(payload["id"]), contact=contact, metadata=_metadata(payload))


def invoice_from(payload: Mapping[str, Any]) -> Invoice:
    """A Stripe invoice (its JSON, as a mapping) as a canonical :class:`Invoice`.

    Raises :class:`~soloist.errors.InvalidPayload` naming the field when it does not map.
    """
    lines_field = payload.get("lines")
    raw_lines = lines_field.get("data", []) if isinstance(lines_field, Mapping) else lines_field
    lines: list[Any] = []
    for line in _in_given_order(raw_lines if isinstance(raw_lines, list) else [raw_lines]):
        lines.append(_line(line) if isinstance(line, Mapping) else line)
    customer = payload.get("customer")
    if isinstance(customer, Mapping):  # an expanded customer
        customer = customer.get("id")
    return load(Invoice, {
        "id": payload.get("id"),
        "customer": customer,
        "currency": payload.get("currency"),
        "lines": lines,
        "total": payload.get("total"),
        "status": payload.get("status"),
        "metadata": dict(payload.get("metadata") or {}),
    })


def _in_given_order(lines: list[Any]) -> list[Any]:
    """The lines Soloist made, in the order they were given (each carries its index:
    Stripe orders items made in the same second as it likes), then the others as listed."""

    def position(item: tuple[int, Any]) -> tuple[int, int, int]:
        listed, line = item
        index = _metadata(line).get(_LINE, "") if isinstance(line, Mapping) else ""
        return (0, int(index), listed) if index.isdigit() else (1, 0, listed)

    return [line for _, line in sorted(enumerate(lines), key=position)]


def _line(line: Mapping[str, Any]) -> dict[str, Any]:
    metadata = line.get("metadata") or {}
    amount = line.get("amount")
    quantity: Any = line.get("quantity") or 1
    unit: Any = amount
    if _QUANTITY in metadata and _UNIT_AMOUNT in metadata:
        quantity, unit = metadata[_QUANTITY], metadata[_UNIT_AMOUNT]
    elif isinstance(amount, int) and isinstance(quantity, int) and amount % quantity == 0:
        unit = amount // quantity
    else:
        quantity = 1  # an amount that does not divide: one line of the whole amount
    return {"description": line.get("description") or "", "quantity": quantity,
            "unit_amount": unit}


def _retry_after(error: stripe.StripeError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare for APIs; the step's backoff decides
    return seconds if seconds is not None and seconds >= 0 else None


def translate(error: stripe.StripeError, doing: str, server: str) -> SoloistError:
    """The Soloist error for a failed SDK call; ``doing`` completes "could not ..."."""
    status = error.http_status
    said = (error.user_message or "").strip().rstrip(".") or "no reason given"
    if isinstance(error, stripe.AuthenticationError) or status == 401:
        # The server's text may echo part of the key: it is left out.
        return DeterministicError(f"cannot authenticate to the billing server {server}: "
                                  "the API key was refused")
    if isinstance(error, stripe.PermissionError) or status == 403:
        return DeterministicError(f"the billing server {server} does not allow this API key "
                                  f"to {doing}")
    if isinstance(error, stripe.RateLimitError) or status == 429:
        return Throttled(f"the billing server {server} is rate limiting: could not "
                         f"{doing}", retry_after=_retry_after(error))
    if isinstance(error, stripe.APIConnectionError):
        text = str(error)
        why = "did not answer in time" if "timed out" in text.lower() else "cannot be reached"
        return TransientError(f"the billing server {server} {why}: could not {doing}")
    if isinstance(error, stripe.IdempotencyError):
        return DeterministicError(f"the billing server {server} refused to {doing}: the "
                                  f"idempotency key was used with other parameters ({said})")
    if status is None or status >= 500 or (status == 409 and error.code == "lock_timeout"):
        return TransientError(f"the billing server {server} failed ({status or 'no status'}): "
                              f"could not {doing}: {said}")
    if said.startswith("Invalid response body"):
        if status == 404:
            return DeterministicError(f"the billing server {server} has no such endpoint "
                                      f"(404): could not {doing}")
        return DeterministicError(f"the billing server {server} answered {status} with a "
                                  f"body that is not Stripe's JSON: could not {doing}")
    return DeterministicError(f"the billing server {server} refused to {doing} ({status}): "
                              f"{said}")
