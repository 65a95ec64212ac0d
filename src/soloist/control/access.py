"""Who may do what through the API, the dashboard and MCP: scopes, and the secrets that
carry them. Pure: no store, no clock but the one passed in.

Scopes nest: ``read`` sees everything (but never a secret value); ``run`` also starts,
cancels and retries runs; ``approve`` also decides at gates; ``admin`` may do anything:
deploy, roll back, write memory by hand, manage tokens. A token holds one or more scopes,
and a request names the one it needs (:func:`allows`).

A secret is 32 random bytes, url-safe, behind a prefix that says what it is
(``sol_tok_``, ``sol_ses_``, ``sol_lnk_``), so a secret pasted where it should not be is
recognisable (and a scanner can find it). Only its SHA-256 is stored: a secret of 256
random bits needs no slow hash, as a password would.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from soloist.errors import InputError

SCOPES = ("read", "run", "approve", "admin")
#: what each scope also grants
_IMPLIES = {"read": {"read"}, "run": {"read", "run"}, "approve": {"read", "approve"},
            "admin": set(SCOPES)}
PREFIXES = {"token": "sol_tok_", "session": "sol_ses_", "login": "sol_lnk_"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Principal:
    """Who a request is: the token's (or session's) name, what it may do, and the actor
    its actions are recorded under (``token:NAME``; a dashboard session is the operator,
    ``person:NAME``)."""

    name: str
    scopes: frozenset[str]
    actor: str
    token_id: str

    def may(self, needed: str) -> bool:
        return allows(self.scopes, needed)


def granted(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope that ``scopes`` grant, with what each implies."""
    out: set[str] = set()
    for scope in scopes:
        out |= _IMPLIES.get(scope, set())
    return frozenset(out)


def allows(scopes: Iterable[str], needed: str) -> bool:
    return needed in granted(scopes)


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` in their canonical order; one sentence for an unknown or missing one."""
    given = list(scopes)
    unknown = [s for s in given if s not in SCOPES]
    if unknown:
        raise InputError(f"{unknown[0]!r} is not a scope; use one or more of "
                         f"{', '.join(SCOPES)}")
    if not given:
        raise InputError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in given)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InputError(f"{name!r} is not a token name; use letters, digits, '.', '_' or "
                         "'-' (at most 64, starting with a letter or digit)")
    return name


def new_secret(kind: str) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


#: failed sign-ins from one address that are let through before it must wait
FREE_FAILURES = 10
#: how long a failure is remembered
FAILURE_WINDOW = 900.0


def login_wait(failures: int) -> float:
    """Seconds an address that failed to sign in ``failures`` times within the window must
    wait before its next attempt is even looked at: none for the first ten (typos), then
    1 s doubling up to the window, so guessing is slow and a person is barely held up."""
    if failures < FREE_FAILURES:
        return 0.0
    return float(min(FAILURE_WINDOW, 2 ** (failures - FREE_FAILURES)))
