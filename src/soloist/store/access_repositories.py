"""Access tokens over the named queries of either backend (``soloist.store.access``)."""

from __future__ import annotations

import builtins
from typing import Any

from soloist.store.access import TokenRow
from soloist.store.seam import Connection, Row, dumps, loads


def _token(row: Row) -> TokenRow:
    return TokenRow(row["id"], row["name"], row["kind"], tuple(loads(row["scopes"])),
                    row["digest"], row["created_at"], row["created_by"], row["expires_at"],
                    row["last_used_at"], row["revoked_at"])


class SqlTokens:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def add(self, row: TokenRow) -> None:
        self.conn.run(self.q.insert_token, {
            "id": row.id, "name": row.name, "kind": row.kind, "scopes": dumps(list(row.scopes)),
            "digest": row.digest, "created_at": row.created_at, "created_by": row.created_by,
            "expires_at": row.expires_at})

    def find(self, digest: str) -> TokenRow | None:
        rows = self.conn.fetch(self.q.token_by_digest, {"digest": digest})
        return _token(rows[0]) if rows else None

    def live(self, name: str, kind: str = "token") -> TokenRow | None:
        rows = self.conn.fetch(self.q.live_token, {"name": name, "kind": kind})
        return _token(rows[0]) if rows else None

    def list(self, kind: str | None = None) -> builtins.list[TokenRow]:
        return [_token(r) for r in self.conn.fetch(self.q.list_tokens, {"kind": kind})]

    def revoke(self, token_id: str, now: float) -> bool:
        return self.conn.run(self.q.revoke_token, {"id": token_id, "now": now}) == 1

    def touch(self, token_id: str, now: float) -> None:
        self.conn.run(self.q.touch_token, {"id": token_id, "now": now})
