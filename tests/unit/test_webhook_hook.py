"""A webhook connector's hook, with no server: what a delivery becomes, what is refused,
and how a ``Retry-After`` is read."""

from __future__ import annotations

import email.utils

import pytest

from soloist.errors import InvalidPayload, StaleSignature, WrongSignature
from soloist.integrations.webhooks import sign
from soloist.integrations.webhooks_connector import (
    DEFAULT_RETRY_AFTER,
    WebhookHook,
    retry_after,
)

SECRET = "whsec-unit"
NOW = 1_764_590_400.0


def hook(tolerance: float = 300.0) -> WebhookHook:
    return WebhookHook("forms", "forms", lambda: SECRET, tolerance, "Webhook-Id")


def headers(body: bytes, delivery: str = "d-1", **more: str) -> dict[str, str]:
    return {"soloist-signature": sign(body, SECRET, now=NOW), "webhook-id": delivery, **more}


def test_a_delivery_becomes_an_event_with_its_body_and_safe_headers() -> None:
    body = b'{"order": "A-1", "total": 12.5}'
    got = hook().accept(headers(body, Authorization="Bearer nope", **{
        "Content-Type": "application/json", "Soloist-Event": "order.paid"}), body, NOW + 1)
    assert got.delivery_id == "d-1" and got.topic == "webhook.received"
    assert got.payload == {
        "connector": "forms", "delivery_id": "d-1", "body": {"order": "A-1", "total": 12.5},
        "headers": {"Content-Type": "application/json", "Soloist-Event": "order.paid",
                    "Webhook-Id": "d-1"}}
    text = b"not json at all"
    assert hook().accept(headers(text), text, NOW).payload["body"] == "not json at all"


def test_what_cannot_be_read_or_trusted_is_refused() -> None:
    body = b'{"a": 1}'
    with pytest.raises(WrongSignature):
        hook().accept(headers(body), b'{"a": 2}', NOW)
    with pytest.raises(StaleSignature):
        hook(tolerance=60).accept(headers(body), body, NOW + 61)
    with pytest.raises(InvalidPayload, match="no Webhook-Id header"):
        hook().accept({"Soloist-Signature": sign(body, SECRET, now=NOW)}, body, NOW)
    with pytest.raises(InvalidPayload, match="not UTF-8"):
        hook().accept(headers(b"\xff"), b"\xff", NOW)
    with pytest.raises(InvalidPayload, match="the body"):
        hook().accept(headers(b'{"n": NaN}'), b'{"n": NaN}', NOW)


def test_retry_after_is_seconds_or_a_date() -> None:
    assert retry_after("7", NOW) == 7.0
    assert retry_after(email.utils.formatdate(NOW + 30, usegmt=True), NOW) == 30.0
    assert retry_after(email.utils.formatdate(NOW - 30, usegmt=True), NOW) == 0.0
    assert retry_after(None, NOW) == retry_after("soon", NOW) == DEFAULT_RETRY_AFTER
