"""Webhook signing and verification, and agreement with the stripe SDK's own scheme."""

from __future__ import annotations

import time

import pytest
import stripe

from soloist.errors import (
    DeterministicError,
    MalformedSignature,
    MissingSignature,
    StaleSignature,
    WrongSignature,
    classify,
)
from soloist.integrations import webhooks
from soloist.integrations.webhooks import (
    STRIPE,
    sign,
    signed_headers,
    verify,
    verify_headers,
)

BODY = b'{"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}'
SECRET = "whsec_test_secret_value"
NOW = 1_764_590_400.0


def test_a_signed_body_verifies_and_returns_its_timestamp() -> None:
    header = sign(BODY, SECRET, now=NOW)
    assert header.startswith(f"t={int(NOW)},v1=")
    assert verify(BODY, header, [SECRET], now=NOW + 10) == int(NOW)


def test_any_change_to_the_body_fails() -> None:
    header = sign(BODY, SECRET, now=NOW)
    with pytest.raises(WrongSignature) as wrong:
        verify(BODY + b" ", header, [SECRET], now=NOW)
    assert str(wrong.value) == ("the Soloist-Signature signature does not match the body "
                                "with any of the 1 configured secret(s)")
    assert classify(wrong.value) == "deterministic"
    assert SECRET not in str(wrong.value)


def test_a_changed_timestamp_fails_even_with_the_same_signature() -> None:
    header = sign(BODY, SECRET, now=NOW)
    forged = header.replace(f"t={int(NOW)}", f"t={int(NOW) + 60}")
    with pytest.raises(WrongSignature):
        verify(BODY, forged, [SECRET], now=NOW + 60)


def test_tolerance_both_ways_with_now_passed_in() -> None:
    header = sign(BODY, SECRET, now=NOW)
    assert verify(BODY, header, [SECRET], now=NOW + 300) == int(NOW)
    with pytest.raises(StaleSignature) as old:
        verify(BODY, header, [SECRET], now=NOW + 301)
    assert str(old.value) == ("the Soloist-Signature timestamp is 301 s old, more than the "
                              "300 s allowed")
    with pytest.raises(StaleSignature, match="in the future"):
        verify(BODY, header, [SECRET], now=NOW - 301)
    assert verify(BODY, header, [SECRET], now=NOW + 3000, tolerance=3600) == int(NOW)


def test_a_wrong_signature_is_reported_as_wrong_even_when_old() -> None:
    # The signature is checked first, so a forger cannot probe the tolerance.
    header = sign(BODY, "whsec_other", now=NOW)
    with pytest.raises(WrongSignature):
        verify(BODY, header, [SECRET], now=NOW + 10_000)


def test_rotation_either_side() -> None:
    old, new = "whsec_old", "whsec_new"
    # The receiver accepts both while the sender moves to the new secret...
    assert verify(BODY, sign(BODY, old, now=NOW), [new, old], now=NOW) == int(NOW)
    assert verify(BODY, sign(BODY, new, now=NOW), [new, old], now=NOW) == int(NOW)
    # ...or the sender signs with both while receivers move.
    both = webhooks.header_value(BODY, [old, new], now=NOW)
    assert both.count("v1=") == 2
    assert verify(BODY, both, [old], now=NOW) == int(NOW)
    assert verify(BODY, both, [new], now=NOW) == int(NOW)
    with pytest.raises(WrongSignature, match="any of the 2 configured"):
        verify(BODY, sign(BODY, "whsec_gone", now=NOW), [new, old], now=NOW)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header(header: str | None) -> None:
    with pytest.raises(MissingSignature, match=r"^the delivery has no Soloist-Signature header$"):
        verify(BODY, header, [SECRET], now=NOW)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("garbage", "malformed"),
        ("v1=abc", "no valid timestamp"),
        ("t=abc,v1=abc", "no valid timestamp"),
        ("t=-5,v1=abc", "no valid timestamp"),
        ("t=1,t=2,v1=abc", "no valid timestamp"),
        (f"t={int(NOW)}", "no v1 signature"),
        (f"t={int(NOW)},v0=abc", "no v1 signature"),
        ("t=1,v1=" + "a" * 5000, "longer than"),
    ],
)
def test_a_malformed_header(header: str, says: str) -> None:
    with pytest.raises(MalformedSignature, match=says) as malformed:
        verify(BODY, header, [SECRET], now=NOW)
    assert isinstance(malformed.value, DeterministicError)


def test_unknown_entries_are_ignored_and_non_ascii_is_just_wrong() -> None:
    header = sign(BODY, SECRET, now=NOW)
    assert verify(BODY, f"{header},v0=legacy,extra=1", [SECRET], now=NOW) == int(NOW)
    with pytest.raises(WrongSignature):
        verify(BODY, f"t={int(NOW)},v1=ü", [SECRET], now=NOW)
    with pytest.raises(WrongSignature):
        verify(BODY, f"t={int(NOW)},v1=\udcff", [SECRET], now=NOW)


def test_secrets_must_be_a_non_empty_list_of_non_empty_strings() -> None:
    header = sign(BODY, SECRET, now=NOW)
    with pytest.raises(ValueError, match="non-empty"):
        verify(BODY, header, [], now=NOW)
    with pytest.raises(ValueError, match="non-empty"):
        sign(BODY, "", now=NOW)
    with pytest.raises(TypeError):
        verify(BODY, header, SECRET, now=NOW)


def test_outbound_headers_carry_the_signature_and_the_idempotency_key() -> None:
    headers = signed_headers(BODY, [SECRET], now=NOW, idempotency_key="run-1/step-2")
    assert headers["Idempotency-Key"] == "run-1/step-2"
    assert verify_headers(BODY, {k.lower(): v for k, v in headers.items()}, [SECRET],
                          now=NOW) == int(NOW)
    with pytest.raises(ValueError, match="one non-empty line"):
        signed_headers(BODY, [SECRET], now=NOW, idempotency_key="a\r\nX-Evil: 1")


def test_stripe_scheme_names_its_header() -> None:
    header = sign(BODY, SECRET, now=NOW)
    assert verify_headers(BODY, {"stripe-signature": header}, [SECRET], now=NOW,
                          scheme=STRIPE) == int(NOW)
    with pytest.raises(MissingSignature, match="no Stripe-Signature header"):
        verify_headers(BODY, {"Soloist-Signature": header}, [SECRET], now=NOW, scheme=STRIPE)


# -- the stripe SDK agrees ---------------------------------------------------------------


def test_a_header_made_by_the_stripe_sdk_verifies_here() -> None:
    header = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), SECRET, timestamp=int(NOW))
    assert verify(BODY, header, [SECRET], now=NOW + 5, scheme=STRIPE) == int(NOW)
    with pytest.raises(WrongSignature):
        verify(BODY, header, ["whsec_other"], now=NOW, scheme=STRIPE)


def test_a_header_made_here_verifies_in_the_stripe_sdk() -> None:
    # construct_event checks the age against the real clock, so this one signature is
    # made at the current time; the SDK's tolerance (300 s) leaves ample room.
    header = sign(BODY, SECRET, now=time.time())
    event = stripe.Webhook.construct_event(BODY, header, SECRET)
    assert event.id == "evt_1"
    assert event.type == "invoice.paid"
    # and a timestamp-free check of a fixed one
    assert stripe.WebhookSignature.verify_header(BODY, sign(BODY, SECRET, now=NOW), SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY + b"x", sign(BODY, SECRET, now=NOW), SECRET)


def test_both_reject_an_old_signature() -> None:
    header = sign(BODY, SECRET, now=NOW)  # 2025: long past
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(BODY, header, SECRET)
    with pytest.raises(StaleSignature):
        verify(BODY, header, [SECRET], now=time.time(), scheme=STRIPE)
