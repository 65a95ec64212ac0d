"""The storage contract of access: who may use the HTTP API, the dashboard and MCP.

One table, ``access_tokens``, the same on both backends, reached as ``tx.tokens``. A row is
one secret that opens the door, of one ``kind``:

* ``token``: a bearer token made by ``soloist token create NAME --scope ...``; at most one
  live (unrevoked) token per name;
* ``session``: a dashboard's sign-in, the secret in an HttpOnly cookie, with an expiry;
* ``login``: a one-time login link (``soloist up`` prints it); using it revokes it.

Only the SHA-256 ``digest`` of a secret is stored, never the secret; ``scopes`` is a JSON
list. The table is kept out of snapshots (like the dispatch ledger), so a restore never
brings back a token revoked since nor drops one made since.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Literal, Protocol

TokenKind = Literal["token", "session", "login"]


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    name: str
    kind: str
    scopes: tuple[str, ...]
    digest: str
    created_at: float
    created_by: str
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None


class Tokens(Protocol):
    def add(self, row: TokenRow) -> None: ...
    def find(self, digest: str) -> TokenRow | None:
        """The row of a secret by its digest, revoked or expired ones included."""
        ...
    def live(self, name: str, kind: str = "token") -> TokenRow | None:
        """The unrevoked row of that name and kind (for ``session``/``login``: the newest)."""
        ...
    def list(self, kind: str | None = None) -> builtins.list[TokenRow]:
        """Oldest first, revoked ones included."""
        ...
    def revoke(self, token_id: str, now: float) -> bool:
        """Revoke the row if it is not already; whether this call revoked it (so of two
        uses of a one-time login link, one wins)."""
        ...
    def touch(self, token_id: str, now: float) -> None:
        """Record a use."""
        ...
