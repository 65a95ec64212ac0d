"""How the billing client names a failed Stripe call: the kinds the step runner acts on.

The integration tests produce the failures localstripe can (401, 404, 429, refused
connections, timeouts); these are the SDK's own exceptions for the rest.
"""

from __future__ import annotations

import pytest
import stripe

from soloist.errors import DeterministicError, TransientError
from soloist.integrations.billing.stripe_client import translate

SERVER = "https://api.stripe.com"


def _kind(error: stripe.StripeError) -> tuple[type, str]:
    translated = translate(error, "create an invoice for cus_1", SERVER)
    return type(translated), str(translated)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(status: int) -> None:
    kind, text = _kind(stripe.APIError("Something went wrong", http_status=status))
    assert kind is TransientError
    assert text == (f"the billing server {SERVER} failed ({status}): could not create an "
                    "invoice for cus_1: Something went wrong")


def test_a_lock_timeout_is_transient_and_other_conflicts_are_not() -> None:
    assert _kind(stripe.InvalidRequestError("locked", None, http_status=409,
                                            code="lock_timeout"))[0] is TransientError
    assert _kind(stripe.InvalidRequestError("conflict", None, http_status=409))[0] \
        is DeterministicError


def test_an_idempotency_key_reused_with_other_parameters_is_deterministic() -> None:
    kind, text = _kind(stripe.IdempotencyError("Keys for idempotent requests can only be "
                                               "used with the same parameters", http_status=400))
    assert kind is DeterministicError
    assert "the idempotency key was used with other parameters" in text


def test_refusals_are_deterministic_and_keep_the_servers_reason() -> None:
    kind, text = _kind(stripe.InvalidRequestError("Missing required param: currency.",
                                                  "currency", http_status=400))
    assert kind is DeterministicError
    assert text == (f"the billing server {SERVER} refused to create an invoice for cus_1 "
                    "(400): Missing required param: currency")
    assert _kind(stripe.CardError("Your card was declined.", None, "card_declined",
                                  http_status=402))[0] is DeterministicError
    kind, text = _kind(stripe.PermissionError("no", http_status=403))
    assert kind is DeterministicError
    assert text == (f"the billing server {SERVER} does not allow this API key to create an "
                    "invoice for cus_1")


def test_an_authentication_error_never_quotes_the_servers_text() -> None:
    error = stripe.AuthenticationError("Invalid API Key provided: sk_live_****************abcd",
                                       http_status=401)
    kind, text = _kind(error)
    assert kind is DeterministicError
    assert "abcd" not in text


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("0.5", 0.5), ("-1", None),
                                                  ("Wed, 21 Oct 2026 07:28:00 GMT", None)])
def test_retry_after_is_read_as_seconds(header: str, expected: float | None) -> None:
    error = stripe.RateLimitError("Too many requests", http_status=429,
                                  headers={"Retry-After": header})
    translated = translate(error, "list customers", SERVER)
    assert isinstance(translated, TransientError)
    assert translated.retry_after == expected


def test_a_body_that_is_not_json_is_deterministic_unless_the_server_failed() -> None:
    kind, text = _kind(stripe.APIError("Invalid response body from API: <html> (HTTP response "
                                       "code was 200)", http_status=200))
    assert kind is DeterministicError
    assert "with a body that is not Stripe's JSON" in text
    assert _kind(stripe.APIError("Invalid response body from API: <html>",
                                 http_status=502))[0] is TransientError
