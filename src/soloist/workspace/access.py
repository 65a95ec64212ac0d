"""Access: the tokens, sessions and login links through which the API, the dashboard and
MCP are used (the rules are ``soloist.control.access``, the rows ``soloist.store.access``).

Every token made or revoked, and every sign-in, is an event in the episodic log under the
actor who did it; a secret is returned once, when it is made, and never stored or logged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from soloist.control.access import (
    Principal,
    check_name,
    check_scopes,
    digest,
    granted,
    new_secret,
)
from soloist.errors import InvalidState, NotFound, Unauthenticated
from soloist.orchestration.runs import new_id
from soloist.store.access import TokenRow
from soloist.store.base import NewEvent, Store

SESSION_SECONDS = 30 * 86400.0
LOGIN_SECONDS = 86400.0
_TOUCH_EVERY = 60.0  # a use is recorded at most this often per token: a read is no write
#: how long a token once found is trusted without reading the store again: a revoke here
#: takes effect at once, one made by another process (`soloist token revoke`) within this
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Issued:
    """A secret just made: shown once, to the one who asked for it."""

    name: str
    scopes: tuple[str, ...]
    secret: str
    expires_at: float | None = None


class Access:
    def __init__(self, store: Store, operator: str) -> None:
        self.store = store
        #: the person a dashboard session acts as (``person:NAME``)
        self.operator = operator
        self._touched: dict[str, float] = {}
        #: digest -> (the principal, its expiry, when it was read)
        self._known: dict[str, tuple[Principal, float | None, float]] = {}
        self._lock = threading.Lock()

    # -- bearer tokens ---------------------------------------------------------------
    def create_token(self, name: str, scopes: list[str] | tuple[str, ...], actor: str
                     ) -> Issued:
        check_name(name)
        ordered = check_scopes(scopes)
        secret = new_secret("token")
        now = time.time()
        with self.store.transaction() as tx:
            if tx.tokens.live(name) is not None:
                raise InvalidState(f"a token named {name!r} exists; revoke it first "
                                   f"(`soloist token revoke {name}`) or choose another name")
            tx.tokens.add(TokenRow(new_id("t"), name, "token", ordered, digest(secret), now,
                                   actor))
            tx.events.append(NewEvent("access.token_created",
                                      {"name": name, "scopes": list(ordered)},
                                      actor=actor, ts=now))
        return Issued(name, ordered, secret)

    def tokens(self) -> list[TokenRow]:
        """Every bearer token ever made, oldest first (revoked ones say so)."""
        with self.store.read() as tx:
            return tx.tokens.list("token")

    def revoke_token(self, name: str, actor: str) -> TokenRow:
        now = time.time()
        with self.store.transaction() as tx:
            row = tx.tokens.live(name)
            if row is None:
                raise NotFound(f"no live token named {name!r}; `soloist token list` shows "
                               "them")
            tx.tokens.revoke(row.id, now)
            tx.events.append(NewEvent("access.token_revoked", {"name": name},
                                      actor=actor, ts=now))
        self._forget(row.id)
        return row

    # -- the dashboard -----------------------------------------------------------------
    def login_link(self, actor: str, seconds: float = LOGIN_SECONDS) -> Issued:
        """A one-time secret that signs the operator in (``soloist up`` prints it in a
        link); it works once, within ``seconds``."""
        secret = new_secret("login")
        now = time.time()
        with self.store.transaction() as tx:
            tx.tokens.add(TokenRow(new_id("l"), self.operator, "login", ("admin",),
                                   digest(secret), now, actor, expires_at=now + seconds))
        return Issued(self.operator, ("admin",), secret, now + seconds)

    def sign_in(self, login_secret: str, seconds: float = SESSION_SECONDS
                ) -> tuple[Issued, Principal]:
        """Trade a login link's secret for a session; the link is used up."""
        now = time.time()
        with self.store.transaction() as tx:
            row = tx.tokens.find(digest(login_secret))
            if row is None or row.kind != "login" or not _alive(row, now) or not (
                    tx.tokens.revoke(row.id, now)):
                raise Unauthenticated("this login link is not valid (each works once, for "
                                      "a day): run `soloist up` again, or `soloist login` "
                                      "for a new one")
            secret = new_secret("session")
            session = TokenRow(new_id("s"), row.name, "session", row.scopes, digest(secret),
                               now, row.created_by, expires_at=now + seconds)
            tx.tokens.add(session)
            tx.events.append(NewEvent("access.signed_in", {"name": row.name},
                                      actor=_actor(session), ts=now))
        return Issued(row.name, row.scopes, secret, session.expires_at), _principal(session)

    def sign_out(self, principal: Principal) -> None:
        with self.store.transaction() as tx:
            tx.tokens.revoke(principal.token_id, time.time())
        self._forget(principal.token_id)

    # -- every request -----------------------------------------------------------------
    def cached(self, secret: str | None) -> Principal | None:
        """Who ``secret`` is, if it was found within the last :data:`CACHE_SECONDS` and
        has not expired since; ``None`` means :meth:`authenticate` must read the store.
        No I/O, so an event loop may call it."""
        if not secret:
            return None
        now = time.time()
        with self._lock:
            known = self._known.get(digest(secret))
        if known is None:
            return None
        principal, expires_at, read_at = known
        if now - read_at >= CACHE_SECONDS or (expires_at is not None and now >= expires_at):
            return None
        return principal

    def _forget(self, token_id: str) -> None:
        with self._lock:
            for key, (principal, _, _) in list(self._known.items()):
                if principal.token_id == token_id:
                    del self._known[key]

    def authenticate(self, secret: str | None) -> Principal:
        """Who ``secret`` (a bearer token or a session cookie) is; :class:`Unauthenticated`
        when it is missing, unknown, revoked or expired."""
        if not secret:
            raise Unauthenticated()
        now = time.time()
        with self.store.read() as tx:
            row = tx.tokens.find(digest(secret))
        if row is None or row.kind == "login" or not _alive(row, now):
            raise Unauthenticated("the token is not valid (unknown, revoked or expired)")
        with self._lock:
            due = now - self._touched.get(row.id, 0.0) >= _TOUCH_EVERY
            if due:
                self._touched[row.id] = now
        if due:
            with self.store.transaction() as tx:
                tx.tokens.touch(row.id, now)
        principal = _principal(row)
        with self._lock:
            self._known[digest(secret)] = (principal, row.expires_at, now)
        return principal


def _alive(row: TokenRow, now: float) -> bool:
    return row.revoked_at is None and (row.expires_at is None or now < row.expires_at)


def _actor(row: TokenRow) -> str:
    return f"person:{row.name}" if row.kind == "session" else f"token:{row.name}"


def _principal(row: TokenRow) -> Principal:
    return Principal(row.name, granted(row.scopes), _actor(row), row.id)
