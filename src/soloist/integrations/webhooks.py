"""Webhook signatures: signing outbound deliveries and verifying inbound ones, with no server.

One scheme serves both directions, the one Stripe uses, so a Stripe webhook is checked by
the same code as Soloist's own. A delivery carries a header such as::

    Soloist-Signature: t=1764590400,v1=5257a869e7ec...d8bd   (64 hex digits)

where ``t`` is the Unix time of signing and each ``v1`` is the hex HMAC-SHA256, keyed by a
shared secret, of ``f"{t}."`` followed by the raw body bytes (never a re-serialised JSON: a
body that was parsed and written again no longer matches). Several ``v1`` entries may be
present while a secret is being rotated; the receiver likewise accepts a list of secrets,
and one match with any of them is enough. Other entries (Stripe's ``v0``) are ignored.

:func:`verify` refuses a delivery whose timestamp is more than ``tolerance`` seconds
(300 by default, as Stripe) away from ``now``, which bounds how long a captured delivery
can be replayed; within the window, replays are stopped by deduplicating on the delivery
or event id, which is the receiver's job (the store's inbound backlog), not this module's.
Every refusal is a :class:`SignatureError` (deterministic: the same delivery is refused
again) with one sentence that names the header, never a secret or an expected signature.

``now`` is always passed in, so the functions are pure and tests need no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from soloist.errors import (
    MalformedSignature,
    MissingSignature,
    StaleSignature,
    WrongSignature,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "SOLOIST",
    "STRIPE",
    "Scheme",
    "header",
    "header_value",
    "sign",
    "signed_headers",
    "verify",
    "verify_headers",
]

#: seconds a signature stays valid either side of ``now`` (Stripe's default)
DEFAULT_TOLERANCE = 300.0
_VERSION = "v1"
# A real header is well under 1 KiB even with a few rotated signatures; refusing longer
# ones keeps a hostile sender from making the receiver split megabytes.
_MAX_HEADER = 4096


@dataclass(frozen=True)
class Scheme:
    """Which header carries the signature; the algorithm is the same for every scheme."""

    header: str


SOLOIST = Scheme(header="Soloist-Signature")
STRIPE = Scheme(header="Stripe-Signature")







def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _check_secrets(secrets: Sequence[str]) -> None:
    # A programming or configuration mistake, caught before any comparison: an empty key
    # would make every signature computable by anyone.
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of strings, not one string")
    if not secrets or any(not secret for secret in secrets):
        raise ValueError("at least one non-empty webhook secret is needed")


def header_value(body: bytes, secrets: Sequence[str], *, now: float) -> str:
    """The signature header's value for ``body``: ``t=...`` then one ``v1=`` per secret
    (more than one only while the receiver is moving to a new secret)."""
    _check_secrets(secrets)
    timestamp = int(now)
    return ",".join([f"t={timestamp}", *(f"{_VERSION}={_digest(s, timestamp, body)}"
                                         for s in secrets)])


def sign(body: bytes, secret: str, *, now: float) -> str:
    """The signature header's value for ``body`` signed with one secret."""
    return header_value(body, [secret], now=now)


def signed_headers(body: bytes, secrets: Sequence[str], *, now: float, idempotency_key: str,
                   scheme: Scheme = SOLOIST) -> dict[str, str]:
    """The headers of an outbound ``webhook.post`` delivery: the signature and the
    ``Idempotency-Key`` (the intent's key, the same on every retry, so a receiver that
    deduplicates by it sees one delivery however often the step ran)."""
    if not idempotency_key or any(c in idempotency_key for c in "\r\n\x00"):
        raise ValueError("the idempotency key must be one non-empty line")
    return {scheme.header: header_value(body, secrets, now=now),
            "Idempotency-Key": idempotency_key}


def _parse(header: str, scheme: Scheme) -> tuple[int, list[str]]:
    if len(header) > _MAX_HEADER:
        raise MalformedSignature(f"the {scheme.header} header is longer than {_MAX_HEADER} "
                                 "characters")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals:
            raise MalformedSignature(f"the {scheme.header} header is malformed: "
                                     "expected t=TIMESTAMP,v1=SIGNATURE")
        if name == "t":
            timestamps.append(value)
        elif name == _VERSION:
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise MalformedSignature(f"the {scheme.header} header has no valid timestamp "
                                 "(one t= with a Unix time)")
    if not signatures:
        raise MalformedSignature(f"the {scheme.header} header has no {_VERSION} signature")
    return int(timestamps[0]), signatures


def verify(body: bytes, header: str | None, secrets: Sequence[str], *, now: float,
           tolerance: float = DEFAULT_TOLERANCE, scheme: Scheme = SOLOIST) -> int:
    """Check ``header`` (the signature header's value, or ``None`` when absent) against the
    raw ``body``; returns the signed timestamp, or raises a :class:`SignatureError`.

    The signature is checked before the time, so a forged header learns nothing about the
    tolerance; every candidate is compared in constant time.
    """
    _check_secrets(secrets)
    if header is None or not header.strip():
        raise MissingSignature(f"the delivery has no {scheme.header} header")
    timestamp, signatures = _parse(header, scheme)
    expected = [_digest(secret, timestamp, body).encode() for secret in secrets]
    matched = False
    for candidate in signatures:
        for digest in expected:
            # no early exit: the time taken does not say which secret or entry matched
            matched |= hmac.compare_digest(digest, candidate.encode(errors="replace"))
    if not matched:
        raise WrongSignature(f"the {scheme.header} signature does not match the body with "
                             f"any of the {len(secrets)} configured secret(s)")
    age = now - timestamp
    if age > tolerance:
        raise StaleSignature(f"the {scheme.header} timestamp is {int(age)} s old, more than "
                             f"the {int(tolerance)} s allowed")
    if -age > tolerance:
        raise StaleSignature(f"the {scheme.header} timestamp is {int(-age)} s in the future, "
                             f"more than the {int(tolerance)} s allowed")
    return timestamp


def verify_headers(body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *,
                   now: float, tolerance: float = DEFAULT_TOLERANCE,
                   scheme: Scheme = SOLOIST) -> int:
    """:func:`verify` reading the header from a request's headers (names match ignoring
    case, as HTTP's do)."""
    return verify(body, header(headers, scheme.header), secrets, now=now,
                  tolerance=tolerance, scheme=scheme)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (names match ignoring case, as HTTP's do)."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)
