"""The Stripe billing client against a real Stripe-compatible server (localstripe).

What the client made is counted on the server itself, through the stripe SDK directly.
localstripe's quirks (tests/support/README.md) shape the setup: an invoice needs a customer
with a subscription (a free plan), it has no finalize or send endpoint, and paying with a
declined card is what makes an invoice open.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import stripe
from support.netutil import free_port
from support.stripe_server import StripeTestServer

from soloist.errors import DeterministicError, InvalidPayload, Throttled, TransientError
from soloist.integrations.billing import INTENT_METADATA, StripeBillingClient, invoice_from
from soloist.integrations.entities import Contact, InvoiceLine

ADA = Contact(name="Ada Lovelace", email="ada@example.test")
LINES = (
    InvoiceLine(description="consulting", quantity=3, unit_amount=5000),
    InvoiceLine(description="travel", quantity=1, unit_amount=1234),
)


@pytest.fixture
def billing(stripe_server: StripeTestServer) -> Iterator[StripeBillingClient]:
    with StripeBillingClient(api_key=stripe_server.api_key, base_url=stripe_server.url,
                             timeout=10) as client:
        yield client


@pytest.fixture
def raw(stripe_server: StripeTestServer) -> Iterator[stripe.StripeClient]:
    """The SDK straight to the server: to set localstripe up and to count what exists."""
    http = stripe.RequestsClient()
    try:
        yield stripe.StripeClient(stripe_server.api_key, base_addresses={"api": stripe_server.url},
                                  http_client=http, max_network_retries=0)
    finally:
        http.close()


def _subscribe(raw: stripe.StripeClient, customer: str) -> None:
    """localstripe invoices only a customer with a subscription: a free plan will do."""
    product = raw.v1.products.create(params={"name": "Plan"})
    plan = raw.v1.plans.create(
        params={"amount": 0, "currency": "eur", "interval": "month", "product": product.id})
    raw.v1.subscriptions.create(params={"customer": customer, "items": [{"plan": plan.id}]})


def _open(raw: stripe.StripeClient, customer: str, invoice: str) -> None:
    """Make a draft open on localstripe (it has no finalize): pay with a declined card."""
    card = raw.v1.payment_methods.create(params={
        "type": "card",
        "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    raw.v1.payment_methods.attach(card.id, params={"customer": customer})
    raw.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": card.id}})
    assert raw.v1.invoices.pay(invoice).status == "open"


def _count_customers(raw: stripe.StripeClient, email: str) -> int:
    return len(raw.v1.customers.list(params={"email": email, "limit": 100}).data)


def _count_invoices(raw: stripe.StripeClient, customer: str) -> int:
    return len(raw.v1.invoices.list(params={"customer": customer, "limit": 100}).data)


def _our_lines(invoice_lines: tuple[InvoiceLine, ...]) -> tuple[InvoiceLine, ...]:
    # the free plan's line (0, "Plan") is localstripe's, not ours
    return tuple(line for line in invoice_lines if line.description != "Plan")


# -- customers ---------------------------------------------------------------------------


def test_create_customer_once_per_key_and_find_it(
    billing: StripeBillingClient, raw: stripe.StripeClient
) -> None:
    first = billing.create_customer(ADA, key="intent-1")
    assert first.id.startswith("cus_")
    assert first.contact == ADA
    assert first.metadata == {INTENT_METADATA: "intent-1"}
    # localstripe ignores Idempotency-Key: only the metadata lookup makes this a replay
    assert billing.create_customer(ADA, key="intent-1") == first
    assert _count_customers(raw, ADA.email) == 1

    other = billing.create_customer(ADA, key="intent-2")
    assert other.id != first.id
    assert _count_customers(raw, ADA.email) == 2
    assert billing.find_customer(ADA.email, key="intent-1") == first
    assert billing.find_customer(ADA.email) in (first, other)
    assert billing.find_customer("nobody@example.test") is None
    assert billing.find_customer(ADA.email, key="intent-3") is None


# -- invoices ----------------------------------------------------------------------------


def test_create_invoice_with_lines_once_per_key(
    billing: StripeBillingClient, raw: stripe.StripeClient
) -> None:
    customer = billing.create_customer(ADA, key="c-1").id
    _subscribe(raw, customer)
    before = _count_invoices(raw, customer)  # subscribing made the subscription's first one

    invoice = billing.create_invoice(customer, LINES, currency="eur", key="inv-1",
                                     description="March")
    assert invoice.id.startswith("in_")
    assert invoice.customer == customer
    assert invoice.status == "draft"
    assert invoice.currency == "eur"
    assert _our_lines(invoice.lines) == LINES  # quantity and unit amount survive
    assert invoice.total == 3 * 5000 + 1234
    assert invoice.metadata == {INTENT_METADATA: "inv-1"}

    again = billing.create_invoice(customer, LINES, currency="eur", key="inv-1")
    assert again == invoice
    assert billing.retrieve(invoice.id) == invoice
    # counted on the server: one invoice, and no line left pending for the next one
    assert _count_invoices(raw, customer) == before + 1
    assert raw.v1.invoice_items.list(params={"customer": customer}).data == []


def test_a_retry_after_a_crash_between_lines_creates_only_the_missing_ones(
    billing: StripeBillingClient, raw: stripe.StripeClient
) -> None:
    customer = billing.create_customer(ADA, key="c-1").id
    _subscribe(raw, customer)
    # What a first attempt that died after its first line left behind.
    raw.v1.invoice_items.create(params={
        "customer": customer, "currency": "eur", "amount": 15000, "description": "consulting",
        "metadata": {INTENT_METADATA: "inv-1", "soloist_line": "0", "soloist_quantity": "3",
                     "soloist_unit_amount": "5000"}})

    invoice = billing.create_invoice(customer, LINES, currency="eur", key="inv-1")
    assert _our_lines(invoice.lines) == LINES
    assert invoice.total == 3 * 5000 + 1234


def test_finalize_send_and_void(
    billing: StripeBillingClient, raw: stripe.StripeClient, stripe_server: StripeTestServer
) -> None:
    customer = billing.create_customer(ADA, key="c-1").id
    _subscribe(raw, customer)
    draft = billing.create_invoice(customer, LINES, currency="eur", key="inv-1")

    # localstripe has no finalize or send endpoint: a clear deterministic failure
    with pytest.raises(DeterministicError) as finalize:
        billing.finalize(draft.id, key="inv-1")
    assert str(finalize.value) == (f"the billing server {stripe_server.url} has no such "
                                   f"endpoint (404): could not finalize invoice {draft.id}")
    with pytest.raises(DeterministicError, match="is a draft: finalize it before sending it"):
        billing.send(draft.id, key="inv-1")
    with pytest.raises(DeterministicError, match="is a draft, which cannot be voided"):
        billing.void(draft.id, key="inv-1")

    _open(raw, customer, draft.id)
    # past draft: finalize is a replay and asks nothing of the server
    assert billing.finalize(draft.id, key="inv-1").status == "open"
    with pytest.raises(DeterministicError, match=r"no such endpoint \(404\): could not send"):
        billing.send(draft.id, key="inv-1")

    voided = billing.void(draft.id, key="inv-1")
    assert voided.status == "void"
    assert voided.id == draft.id
    assert billing.void(draft.id, key="inv-1") == voided  # the compensation is idempotent
    assert raw.v1.invoices.retrieve(draft.id).status == "void"


def test_an_unknown_invoice_is_a_deterministic_sentence(
    billing: StripeBillingClient, stripe_server: StripeTestServer
) -> None:
    with pytest.raises(DeterministicError) as missing:
        billing.retrieve("in_nope")
    assert str(missing.value) == (f"the billing server {stripe_server.url} refused to "
                                  "retrieve invoice in_nope (404): Not Found")


# -- failures ----------------------------------------------------------------------------


def test_a_429_storm_is_transient_with_retry_after_then_recovers(
    billing: StripeBillingClient, stripe_server: StripeTestServer
) -> None:
    stripe_server.rate_limit(2, retry_after=7)
    for _ in range(2):
        with pytest.raises(TransientError) as limited:
            billing.find_customer(ADA.email)
        assert limited.value.kind == "transient"
        assert isinstance(limited.value, Throttled)  # a wait that spends no attempt
        assert limited.value.retry_after == 7.0
        assert str(limited.value) == (f"the billing server {stripe_server.url} is rate "
                                      f"limiting: could not list customers by {ADA.email}")
    stripe_server.rate_limit(1)  # Stripe usually sends no Retry-After
    with pytest.raises(TransientError) as bare:
        billing.create_customer(ADA, key="c-1")
    assert bare.value.retry_after is None
    assert billing.find_customer(ADA.email) is None  # the storm created nothing
    assert billing.create_customer(ADA, key="c-1").contact == ADA


def test_a_refused_key_is_deterministic_and_never_quoted(
    stripe_server: StripeTestServer,
) -> None:
    with StripeBillingClient(api_key="rk_wrong_secret_value", base_url=stripe_server.url) as bad:
        with pytest.raises(DeterministicError) as refused:
            bad.find_customer(ADA.email)
    assert str(refused.value) == (f"cannot authenticate to the billing server "
                                  f"{stripe_server.url}: the API key was refused")
    assert "secret_value" not in str(refused.value)


def test_a_server_that_is_down_is_transient() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with StripeBillingClient(api_key="sk_test_x", base_url=url, timeout=5) as down:
        with pytest.raises(TransientError) as failed:
            down.create_customer(ADA, key="c-1")
    assert str(failed.value) == (f"the billing server {url} cannot be reached: could not "
                                 f"list customers by {ADA.email}")


def test_a_server_that_does_not_answer_times_out_as_transient() -> None:
    # A listening socket that never reads: the connection opens, the answer never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with StripeBillingClient(api_key="sk_test_x", base_url=url, timeout=0.5) as slow:
            with pytest.raises(TransientError, match="did not answer in time"):
                slow.retrieve("in_1")


def test_a_payload_that_does_not_map_names_the_field(
    billing: StripeBillingClient, raw: stripe.StripeClient
) -> None:
    customer = billing.create_customer(ADA, key="c-1").id
    _subscribe(raw, customer)
    made = billing.create_invoice(customer, LINES, currency="eur", key="inv-1")
    good = raw.v1.invoices.retrieve(made.id).to_dict()
    assert invoice_from(good).id == good["id"]

    with pytest.raises(InvalidPayload) as bad_status:
        invoice_from({**good, "status": "pending"})
    assert bad_status.value.field == "status"
    with pytest.raises(InvalidPayload) as bad_line:
        invoice_from({**good, "lines": {"data": [{"description": "x", "amount": None}]}})
    assert bad_line.value.field == "lines[0].unit_amount"
    assert str(bad_line.value).startswith("the payload does not map to an Invoice: "
                                          "lines[0].unit_amount:")
    # an amount that does not divide by its quantity is one line of the whole amount
    odd = invoice_from({**good, "lines": {"data": [{"amount": 1001, "quantity": 2}]}})
    assert odd.lines == (InvoiceLine(quantity=1, unit_amount=1001),)


def test_an_invoice_with_more_lines_than_one_page(
    billing: StripeBillingClient, raw: stripe.StripeClient
) -> None:
    customer = billing.create_customer(ADA, key="c-1").id
    _subscribe(raw, customer)
    many = tuple(InvoiceLine(description=f"item {n}", quantity=n, unit_amount=100)
                 for n in range(1, 13))
    invoice = billing.create_invoice(customer, many, currency="EUR", key="inv-1")

    def in_order(lines: tuple[InvoiceLine, ...]) -> list[InvoiceLine]:
        # localstripe orders the items of one invoice by creation time in whole seconds,
        # so items made in the same second come back in any order; every one must come
        # back, across the pages
        return sorted(lines, key=lambda line: line.quantity)

    assert in_order(_our_lines(invoice.lines)) == list(many)
    assert in_order(_our_lines(billing.retrieve(invoice.id).lines)) == list(many)
