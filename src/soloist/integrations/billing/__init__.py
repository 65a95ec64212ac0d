"""Billing: invoices on Stripe (or a Stripe-compatible server) as canonical entities.

:mod:`~soloist.integrations.billing.stripe_client` is the protocol client the billing
connector calls: customers, invoices with lines, finalize, send, void (the compensation of
creating one) and retrieve, each returning a canonical
:class:`~soloist.integrations.entities.Invoice`, and each failure one of Soloist's errors
with the kind that says whether a retry can help. Every create is idempotent by the
intent's key, sent both as Stripe's ``Idempotency-Key`` header and in the object's
``metadata`` (``soloist_intent``), which is looked up before creating, since not every
server honours the header. Inbound billing webhooks are verified by
:mod:`soloist.integrations.webhooks` (scheme ``STRIPE``).

The SDK comes with the ``connectors`` extra (``pip install 'soloist[connectors]'``); importing
this package without it raises ``ImportError``, which whoever composes a billing connector
turns into a one-sentence configuration error, as the store does for PostgreSQL.
"""

from soloist.integrations.billing.stripe_client import (
    INTENT_METADATA,
    Customer,
    StripeBillingClient,
    invoice_from,
)

__all__ = ["INTENT_METADATA", "Customer", "StripeBillingClient", "invoice_from"]
