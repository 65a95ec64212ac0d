"""The demo's Stripe-compatible server: ``localstripe``, through a small launcher.

localstripe is a stateful fake of Stripe's REST API. Its own script binds ``::`` (every
interface) and pickles its whole store to the fixed path ``/tmp/localstripe.pickle`` on
every write, which every server on the machine would share; the launcher binds
``127.0.0.1`` only and keeps the store in memory (gone when the server stops). Any key of
the form ``sk_test_...`` is accepted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

from soloist.demo.processes import ProcessServer

__all__ = ["LAUNCHER", "DemoStripeServer", "InvoiceEntry", "StripeServer"]

#: run as ``python -c LAUNCHER HOST PORT [ARG...]``; ``# extensions`` is where a subclass's
#: code goes (it sees ``app``, ``web`` and ``sys.argv[3:]``)
LAUNCHER = """\
import sys
from aiohttp import web
from localstripe import resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None
# extensions
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None)
"""


class InvoiceEntry(NamedTuple):
    """One invoice as the Stripe-compatible server holds it."""

    id: str
    status: str
    metadata: dict[str, str]
    amount: int
    currency: str
    customer_email: str | None


class StripeServer(ProcessServer):
    """``localstripe`` as a subprocess on ``127.0.0.1``."""

    name = "Stripe-compatible (localstripe)"
    prefix = "soloist-stripe-"
    log_name = "localstripe.log"
    modules = ("localstripe", "stripe")
    #: Python code run by the launcher before it serves (see :data:`LAUNCHER`)
    extensions = ""

    def __init__(self, folder: Path | None = None, *, api_key: str = "sk_test_soloist",
                 port: int = 0) -> None:
        super().__init__(folder, port=port)
        self.api_key = api_key

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the billing connector's ``base_url`` is set to."""
        return self.url

    def command(self) -> list[str]:
        launcher = LAUNCHER.replace("# extensions\n", self.extensions)
        return [sys.executable, "-c", launcher, self.host, str(self.port),
                *self.launcher_arguments()]

    def launcher_arguments(self) -> list[str]:
        return []

    def invoices(self) -> list[InvoiceEntry]:
        """Every invoice the server holds (through the stripe SDK), oldest first."""
        import stripe

        http = stripe.RequestsClient()
        try:
            client = stripe.StripeClient(self.api_key, base_addresses={"api": self.url},
                                         http_client=http, max_network_retries=0)
            found = [_entry(invoice.to_dict()) for invoice in
                     client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()]
        finally:
            http.close()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
        return found[::-1]  # listed newest first


def _entry(invoice: dict[str, Any]) -> InvoiceEntry:
    metadata = invoice.get("metadata") or {}
    return InvoiceEntry(
        id=str(invoice["id"]), status=str(invoice.get("status")),
        metadata={str(k): str(v) for k, v in metadata.items()},
        amount=int(invoice.get("total") or invoice.get("amount_due") or 0),
        currency=str(invoice.get("currency") or ""),
        customer_email=invoice.get("customer_email"))


#: What the demo's server adds to localstripe, as Stripe itself does it: an invoice for a
#: customer's pending items without a subscription, finalize (a draft becomes open), void
#: of an open invoice nobody tried to pay, and send (an open invoice is emailed to its
#: customer: here, recorded and listed at ``/_config/soloist/sent``, which localstripe
#: serves without a key).
_COMPLETE = """\
import time as _time
from localstripe.errors import UserError
from localstripe.resources import Customer, Invoice, PaymentIntent
from localstripe.server import api_extra

_next = Invoice._get_next_invoice.__func__
_cancel = PaymentIntent._api_cancel.__func__
_sent = []


def _next_invoice(cls, customer=None, subscription=None, upcoming=False, description=None,
                  metadata=None, pending_invoice_items_behavior=None, **options):
    owner = Customer._api_retrieve(customer) if customer else None
    if (owner is not None and not upcoming and subscription is None
            and pending_invoice_items_behavior != "exclude"
            and not owner.subscriptions._list and not any(options.values())):
        return cls(customer=customer, items=[], description=description, metadata=metadata)
    return _next(cls, customer=customer, subscription=subscription, upcoming=upcoming,
                 description=description, metadata=metadata,
                 pending_invoice_items_behavior=pending_invoice_items_behavior, **options)


def _finalize(id, **_):
    invoice = Invoice._api_retrieve(id)
    if invoice.status == "draft":
        invoice._finalize()
    return invoice


def _send(id, **_):
    invoice = Invoice._api_retrieve(id)
    if invoice.status != "open":
        raise UserError(400, "Only an open invoice can be sent, not a " + invoice.status + " one")
    _sent.append({"id": id, "email": invoice.customer_email, "at": _time.time()})
    return invoice


async def _sent_list(request):
    return web.json_response(_sent)


def _cancel_payment(cls, id, **options):
    # A finalized invoice that nobody tried to pay has no payment to cancel when voided.
    return None if id is None else _cancel(cls, id, **options)


Invoice._get_next_invoice = classmethod(_next_invoice)
PaymentIntent._api_cancel = classmethod(_cancel_payment)
app.router.add_post("/v1/invoices/{id}/finalize", api_extra(_finalize, ""))
app.router.add_post("/v1/invoices/{id}/send", api_extra(_send, ""))
app.router.add_get("/_config/soloist/sent", _sent_list)
"""


class DemoStripeServer(StripeServer):
    """localstripe with what the freelancer pack needs of Stripe that it lacks: invoicing
    a customer without a subscription, finalizing and sending an invoice."""

    extensions = _COMPLETE

    def sent(self) -> list[dict[str, Any]]:
        """Each invoice sent to its customer, in order: ``id``, ``email``, ``at``."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_config/soloist/sent", timeout=10) as reply:
            found = json.loads(reply.read())
        return [dict(item) for item in found]
