"""The billing connector end to end: playbooks whose steps call ``billing.*`` in a worker,
against a real Stripe-compatible server (localstripe), on SQLite and PostgreSQL; what
exists is counted on the server through the stripe SDK directly.

localstripe's quirks (tests/support/README.md): an invoice needs a customer with a
subscription (the tests make one, with a free plan, and the connector finds that customer
by email), it has no finalize or send endpoint, and paying with a declined card is what
makes a draft open.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from support.netutil import free_port
from support.runs import drain
from support.stripe_server import StripeTestServer
from support.workspaces import write_workspace

from soloist.errors import (
    DeterministicError,
    InvalidPayload,
    StaleSignature,
    TransientError,
    WrongSignature,
)
from soloist.execution.context import ToolCall
from soloist.integrations import webhooks
from soloist.integrations.billing import INTENT_METADATA
from soloist.integrations.connector import Hook
from soloist.integrations.registry import source_key
from soloist.workspace import Workspace

ADA = "ada@example.test"
HOOK_SECRET = "whsec_soloist_test_secret"

TASKS = '''
def boom(ctx):
    raise ValueError("the order was cancelled downstream")
'''

PLAYBOOKS = {
    "bill": """
name: bill
inputs: {type: object, properties: {fail: {type: boolean}}}
steps:
  - id: invoice
    tool: billing.create_invoice
    args:
      customer_email: ada@example.test
      customer_name: Ada Lovelace
      description: March
      lines:
        - {description: consulting, quantity: 3, unit_amount: 5000}
        - {description: travel, quantity: 1, unit_amount: 1234}
  - {id: later, python: "tasks:boom", when: "inputs.fail"}
""",
    "approve-bill": """
name: approve-bill
steps:
  - id: invoice
    tool: billing.create_invoice
    args: {customer_email: ada@example.test,
           lines: [{description: audit, quantity: 1, unit_amount: 9900}]}
  - {id: confirm, gate: true, needs: [invoice]}
""",
    "customer": """
name: customer
steps:
  - {id: make, tool: billing.create_customer, args: {email: bob@example.test, name: Bob}}
""",
    "manage": """
name: manage
inputs: {type: object, properties: {id: {type: string}}}
steps:
  - {id: look, tool: billing.invoice, args: {id: "{{ inputs.id }}"}}
  - {id: finalize, tool: billing.finalize, args: {id: "{{ inputs.id }}"}, needs: [look]}
  - {id: void, tool: billing.void, args: {id: "{{ inputs.id }}"}, needs: [finalize]}
""",
    "finalize": """
name: finalize
inputs: {type: object, properties: {id: {type: string}}}
steps:
  - {id: finalize, tool: billing.finalize, args: {id: "{{ inputs.id }}"}}
""",
    "send": """
name: send
inputs: {type: object, properties: {id: {type: string}}}
steps:
  - {id: send, tool: billing.send, args: {id: "{{ inputs.id }}"}}
""",
    "paid": """
name: paid
triggers:
  - event: billing.invoice.payment_succeeded
    inputs: {invoice: "{{ event.payload.invoice.id }}"}
inputs: {type: object, properties: {invoice: {type: string}}}
steps:
  - {id: look, tool: billing.invoice, args: {id: "{{ inputs.invoice }}"}}
""",
}


def settings(url: str, **extra: str) -> str:
    values = {"kind": '"billing"', "api_key": '"secret:STRIPE_KEY"', "base_url": f'"{url}"',
              "currency": '"eur"', "timeout": "5", "webhook_secret": '"secret:STRIPE_HOOK"',
              **extra}
    lines = ["[connectors.billing]", *(f"{key} = {value}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture
def raw(stripe_server: StripeTestServer) -> Iterator[stripe.StripeClient]:
    """The SDK straight to the server: to set localstripe up and to count what exists."""
    http = stripe.RequestsClient()
    try:
        yield stripe.StripeClient(stripe_server.api_key,
                                  base_addresses={"api": stripe_server.url},
                                  http_client=http, max_network_retries=0)
    finally:
        http.close()


@pytest.fixture
def customer(raw: stripe.StripeClient) -> str:
    """Ada, with the subscription localstripe needs before it invoices her."""
    made = raw.v1.customers.create(params={"email": ADA, "name": "Ada Lovelace"})
    product = raw.v1.products.create(params={"name": "Plan"})
    plan = raw.v1.plans.create(
        params={"amount": 0, "currency": "eur", "interval": "month", "product": product.id})
    raw.v1.subscriptions.create(params={"customer": made.id, "items": [{"plan": plan.id}]})
    return made.id


@pytest.fixture
def ws(tmp_path: Path, db_url: str, stripe_server: StripeTestServer) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml=settings(stripe_server.url))
    with Workspace(root, database_url=db_url) as workspace:
        workspace.secrets.set("STRIPE_KEY", stripe_server.api_key, "person:test")
        workspace.secrets.set("STRIPE_HOOK", HOOK_SECRET, "person:test")
        workspace.deploy("person:test")
        yield workspace


def ours(raw: stripe.StripeClient, customer: str) -> list[Any]:
    """The customer's invoices made by the connector (not the subscription's own)."""
    invoices = raw.v1.invoices.list(params={"customer": customer, "limit": 100}).data
    return [i for i in invoices if any(
        (line.get("metadata") or {}).get(INTENT_METADATA)
        for line in i.to_dict()["lines"]["data"])]


def open_invoice(raw: stripe.StripeClient, customer: str, invoice: str) -> None:
    """Make a draft open on localstripe (it has no finalize): pay with a declined card."""
    card = raw.v1.payment_methods.create(params={
        "type": "card",
        "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2030,
                 "cvc": "123"}})
    raw.v1.payment_methods.attach(card.id, params={"customer": customer})
    raw.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": card.id}})
    assert raw.v1.invoices.pay(invoice).status == "open"


def step(ws: Workspace, run_id: str, step_id: str) -> Any:
    return next(s for s in ws.show(run_id).steps if s.step_id == step_id and s.kind == "step")


# -- actions -------------------------------------------------------------------------------


def test_create_invoice_in_a_run_then_a_replay_of_its_key_makes_no_second_one(
        ws: Workspace, raw: stripe.StripeClient, customer: str) -> None:
    run_id = ws.start("bill", {"fail": False})
    drain(ws, run_id)
    [intent] = ws.show(run_id).intents
    made = intent.result
    assert made["customer"] == customer  # found by email: not a second Ada
    assert made["status"] == "draft" and made["currency"] == "eur"
    assert made["total"] == 3 * 5000 + 1234
    assert made["metadata"] == {INTENT_METADATA: intent.idempotency_key}
    assert [line for line in made["lines"] if line["description"] != "Plan"] == [
        {"description": "consulting", "quantity": 3, "unit_amount": 5000},
        {"description": "travel", "quantity": 1, "unit_amount": 1234}]

    # The process died after the server made it, before the intent was recorded: the
    # dispatch calls the tool again under the same key (localstripe ignores the header).
    again = ws.tools.get("billing.create_invoice").invoke(
        intent.args, ToolCall(run_id, "invoice", intent.idempotency_key, str(ws.root)))
    assert again == made
    assert [i.id for i in ours(raw, customer)] == [made["id"]]
    assert len(raw.v1.customers.list(params={"email": ADA}).data) == 1


def test_create_customer_once_per_key(ws: Workspace, raw: stripe.StripeClient) -> None:
    run_id = ws.start("customer")
    drain(ws, run_id)
    [intent] = ws.show(run_id).intents
    assert intent.result["email"] == "bob@example.test" and intent.result["name"] == "Bob"
    again = ws.tools.get("billing.create_customer").invoke(
        intent.args, ToolCall(run_id, "make", intent.idempotency_key, str(ws.root)))
    assert again == intent.result
    assert len(raw.v1.customers.list(params={"email": "bob@example.test"}).data) == 1


def test_a_later_failure_deletes_the_draft_it_created(
        ws: Workspace, raw: stripe.StripeClient, customer: str) -> None:
    run_id = ws.start("bill", {"fail": True})
    drain(ws, run_id, "failed")
    assert "cancelled downstream" in (ws.get_run(run_id).error or "")
    assert step(ws, run_id, "invoice").state == "compensated"
    assert ours(raw, customer) == []  # Stripe deletes a draft (it cannot void one)


def test_a_rejected_gate_voids_the_open_invoice(
        ws: Workspace, raw: stripe.StripeClient, customer: str) -> None:
    run_id = ws.start("approve-bill")
    ws.worker().run(until_idle=True)  # the invoice is made; the run waits at the gate
    [intent] = ws.show(run_id).intents
    open_invoice(raw, customer, intent.result["id"])  # someone tried to pay it meanwhile
    [gate] = ws.approvals()
    ws.reject(gate.approval.id, "wrong amount", actor="person:test")
    drain(ws, run_id, "failed")
    assert step(ws, run_id, "invoice").state == "compensated"
    assert raw.v1.invoices.retrieve(intent.result["id"]).status == "void"


def test_read_finalize_and_void_in_a_run(
        ws: Workspace, raw: stripe.StripeClient, customer: str,
        stripe_server: StripeTestServer) -> None:
    made = ws.tools.get("billing.create_invoice").invoke(
        {"customer_email": ADA, "lines": [{"quantity": 2, "unit_amount": 700}]},
        ToolCall("r", "s", "k-1", str(ws.root)))
    # localstripe has no finalize endpoint: one sentence, no retry
    run_id = ws.start("finalize", {"id": made["id"]})
    drain(ws, run_id, "failed")
    assert (f"the billing server {stripe_server.url} has no such endpoint (404): could "
            f"not finalize invoice {made['id']}") in (ws.get_run(run_id).error or "")
    assert step(ws, run_id, "finalize").attempt == 1

    open_invoice(raw, customer, made["id"])
    run_id = ws.start("manage", {"id": made["id"]})
    drain(ws, run_id)
    assert step(ws, run_id, "look").output["status"] == "open"
    finalized, voided = (i.result for i in ws.show(run_id).intents)
    assert finalized["status"] == "open"  # past draft: returned as it is
    assert voided["status"] == "void" and voided["id"] == made["id"]
    assert raw.v1.invoices.retrieve(made["id"]).status == "void"


def test_send_against_a_server_without_the_endpoint_fails_in_one_sentence(
        ws: Workspace, raw: stripe.StripeClient, customer: str,
        stripe_server: StripeTestServer) -> None:
    made = ws.tools.get("billing.create_invoice").invoke(
        {"customer_email": ADA, "lines": [{"quantity": 1, "unit_amount": 700}]},
        ToolCall("r", "s", "k-1", str(ws.root)))
    open_invoice(raw, customer, made["id"])
    run_id = ws.start("send", {"id": made["id"]})
    drain(ws, run_id, "failed")
    assert (f"the billing server {stripe_server.url} has no such endpoint (404): could "
            f"not send invoice {made['id']}") in (ws.get_run(run_id).error or "")
    assert "external-communication" in ws.tools.get("billing.send").tags


def test_bad_lines_are_refused_when_staged_naming_the_field(ws: Workspace) -> None:
    call = ToolCall("r", "s", "k", str(ws.root))
    with pytest.raises(DeterministicError, match=r"'lines\[0\]\.quantity'"):
        ws.tools.get("billing.create_invoice").invoke(
            {"customer_email": ADA, "lines": [{"quantity": -1, "unit_amount": 1}]}, call)
    with pytest.raises(InvalidPayload) as address:
        ws.tools.get("billing.create_invoice").invoke(
            {"customer_email": "not an address", "lines": []}, call)
    assert address.value.field == "email"


# -- failures ------------------------------------------------------------------------------


def test_a_429_storm_makes_the_step_wait_without_spending_attempts(
        ws: Workspace, raw: stripe.StripeClient, customer: str,
        stripe_server: StripeTestServer) -> None:
    stripe_server.rate_limit(4, retry_after=0.1)
    run_id = ws.start("bill", {"fail": False})
    drain(ws, run_id)
    assert step(ws, run_id, "invoice").attempt == 1
    assert len(ours(raw, customer)) == 1
    waits = [e for e in ws.log(run_id=run_id) if "rate limiting" in json.dumps(e.data)]
    assert len(waits) >= 1


def test_connector_test_and_a_refused_key(
        tmp_path: Path, stripe_server: StripeTestServer) -> None:
    root = write_workspace(tmp_path / "ws", {}, toml=settings(stripe_server.url))
    with Workspace(root) as ws:
        ws.secrets.set("STRIPE_KEY", stripe_server.api_key, "person:test")
        assert ws.test_connector("billing") == (
            f"authenticated to the billing server {stripe_server.url}")
    with Workspace(root) as ws:
        ws.secrets.set("STRIPE_KEY", "rk_wrong_secret_value", "person:test")
        with pytest.raises(DeterministicError) as refused:
            ws.test_connector("billing")
        assert str(refused.value) == (f"cannot authenticate to the billing server "
                                      f"{stripe_server.url}: the API key was refused")


def test_a_server_that_is_down_or_silent_is_transient(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        quiet = f"http://127.0.0.1:{silent.getsockname()[1]}"
        for url, why in ((down, "cannot be reached"), (quiet, "did not answer in time")):
            root = write_workspace(tmp_path / why.replace(" ", "-"), {},
                                   toml=settings(url, timeout="0.5"))
            with Workspace(root) as ws:
                ws.secrets.set("STRIPE_KEY", "sk_test_anything", "person:test")
                with pytest.raises(TransientError, match=why):
                    ws.test_connector("billing")


# -- webhooks ------------------------------------------------------------------------------


def hook_of(ws: Workspace) -> Hook:
    hook = ws.connectors.get("billing").hook()
    assert hook is not None and hook.path == "billing"
    return hook


def store(ws: Workspace, hook: Hook, headers: dict[str, str], body: bytes) -> str:
    """What the webhook receiver does with a delivery: check it, then keep it once."""
    event = hook.accept(headers, body, time.time())
    with ws.store.transaction() as tx:
        return tx.inbound.accept(source_key("billing", hook.path), event.delivery_id,
                                 {"topic": event.topic, "payload": event.payload},
                                 1000).outcome


class Receiver(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.deliveries.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.deliveries = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks/billing", \
            httpd.deliveries  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_signed_delivery_from_the_server_is_taken_once_and_starts_a_playbook(
        ws: Workspace, raw: stripe.StripeClient, customer: str, stripe_server: StripeTestServer,
        receiver: tuple[str, list[tuple[dict[str, str], bytes]]]) -> None:
    url, deliveries = receiver
    requests.post(f"{stripe_server.url}/_config/webhooks/soloist", timeout=10, json={
        "url": url, "secret": HOOK_SECRET,
        "events": ["invoice.payment_succeeded"]}).raise_for_status()
    made = ws.tools.get("billing.create_invoice").invoke(
        {"customer_email": ADA, "lines": [{"quantity": 1, "unit_amount": 2500}]},
        ToolCall("r", "s", "k-1", str(ws.root)))
    card = raw.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    raw.v1.payment_methods.attach(card.id, params={"customer": customer})
    raw.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": card.id}})
    assert raw.v1.invoices.pay(made["id"]).status == "paid"
    deadline = time.monotonic() + 30  # localstripe sends its webhooks a second later
    while not deliveries and time.monotonic() < deadline:
        time.sleep(0.05)
    [(headers, body)] = deliveries

    hook = hook_of(ws)
    assert store(ws, hook, headers, body) == "accepted"
    assert store(ws, hook, headers, body) == "duplicate"  # redelivered: the same event id
    event = hook.accept(headers, body, time.time())
    assert event.topic == "billing.invoice.payment_succeeded"
    assert event.delivery_id == json.loads(body)["id"]
    assert event.payload["invoice"]["id"] == made["id"]
    assert event.payload["invoice"]["status"] == "paid"

    ws.scheduler("s").tick()
    [run] = ws.runs()
    assert run.playbook == "paid" and run.inputs == {"invoice": made["id"]}
    drain(ws, run.id)


def test_bad_stale_and_malformed_deliveries_are_refused(ws: Workspace) -> None:
    hook = hook_of(ws)
    now = time.time()
    body = json.dumps({"id": "evt_1", "type": "customer.created", "object": "event",
                       "data": {"object": {"object": "customer", "id": "cus_1"}}}).encode()

    def signed(payload: bytes, secret: str = HOOK_SECRET, at: float = now) -> dict[str, str]:
        return {"Stripe-Signature": webhooks.sign(payload, secret, now=at)}

    event = hook.accept(signed(body), body, now)
    assert (event.topic, event.delivery_id) == ("billing.customer.created", "evt_1")
    assert event.payload == {"connector": "billing", "event_id": "evt_1",
                             "type": "customer.created",
                             "object": {"object": "customer", "id": "cus_1"}}
    with pytest.raises(WrongSignature):
        hook.accept(signed(body, "whsec_someone_else"), body, now)
    with pytest.raises(WrongSignature):
        hook.accept(signed(body), body.replace(b"cus_1", b"cus_2"), now)
    with pytest.raises(StaleSignature, match="more than the 300 s allowed"):
        hook.accept(signed(body, at=now - 301), body, now)
    bad_invoice = json.dumps({"id": "evt_2", "type": "invoice.paid", "data": {"object": {
        "object": "invoice", "id": "in_1", "customer": "cus_1", "currency": "eur",
        "total": 10, "status": "pending", "lines": {"data": []}}}}).encode()
    with pytest.raises(InvalidPayload) as status:
        hook.accept(signed(bad_invoice), bad_invoice, now)
    assert status.value.field == "status"
    no_type = json.dumps({"id": "evt_3", "data": {"object": {}}}).encode()
    with pytest.raises(InvalidPayload, match="has no type") as missing:
        hook.accept(signed(no_type), no_type, now)
    assert missing.value.field == "type"
