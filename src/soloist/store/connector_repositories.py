"""Connector state over the named queries of either backend (``soloist.store.connectors``).

The times recorded here come from the database's clock, inside the statements themselves
(``updated_at``, ``received_at``, ``processed_at``) or read by ``lock_connector`` once the
connector's lock is held, so no worker's own clock takes part.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from soloist.store.connectors import (
    Acceptance,
    BucketRow,
    CursorRow,
    InboundRow,
    SlotRow,
)
from soloist.store.seam import Connection, Row, dumps, loads


def _cursor(row: Row) -> CursorRow:
    return CursorRow(row["connector"], row["source"], loads(row["value"]), row["version"],
                     row["updated_at"])


def _inbound(row: Row) -> InboundRow:
    return InboundRow(row["id"], row["source"], row["delivery_id"], loads(row["payload"]),
                      row["received_at"], row["processed_at"])


class SqlCursors:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def get(self, connector: str, source: str) -> CursorRow | None:
        rows = self.conn.fetch(self.q.get_cursor, {"connector": connector, "source": source})
        return _cursor(rows[0]) if rows else None

    def put(self, connector: str, source: str, value: Any,
            expect_version: int | None) -> CursorRow | None:
        params = {"connector": connector, "source": source, "value": dumps(value),
                  "version": expect_version}
        query = self.q.insert_cursor if expect_version is None else self.q.advance_cursor
        rows = self.conn.fetch(query, params)
        return _cursor(rows[0]) if rows else None

    def list(self, connector: str | None = None) -> builtins.list[CursorRow]:
        return [_cursor(r) for r in self.conn.fetch(self.q.list_cursors,
                                                    {"connector": connector})]


class SqlBuckets:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def _lock(self, name: str) -> float:
        return float(self.conn.fetch(self.q.lock_connector, {"key": f"bucket/{name}"})[0]["now"])

    def lock_bucket(self, name: str) -> tuple[BucketRow | None, float]:
        now = self._lock(name)
        rows = self.conn.fetch(self.q.get_bucket, {"name": name})
        return (BucketRow(**rows[0]) if rows else None), now

    def put_bucket(self, row: BucketRow) -> None:
        self.conn.run(self.q.put_bucket, {"name": row.name, "tokens": row.tokens,
                                          "updated_at": row.updated_at})

    def lock_slots(self, name: str) -> tuple[builtins.list[SlotRow], float]:
        now = self._lock(name)
        return [SlotRow(**r) for r in self.conn.fetch(self.q.slots_of, {"name": name})], now

    def put_slot(self, row: SlotRow) -> None:
        self.conn.run(self.q.put_slot, {"name": row.name, "holder": row.holder,
                                        "expires_at": row.expires_at})

    def drop_slots(self, name: str, holders: Sequence[str]) -> None:
        if holders:
            self.conn.run(self.q.drop_slots, {"name": name,
                                              "holders": dumps(builtins.list(holders))})

    def buckets(self) -> builtins.list[BucketRow]:
        return [BucketRow(**r) for r in self.conn.fetch(self.q.list_buckets)]

    def slots(self, name: str | None = None) -> builtins.list[SlotRow]:
        return [SlotRow(**r) for r in self.conn.fetch(self.q.list_slots, {"name": name})]


class SqlInbound:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def accept(self, source: str, delivery_id: str, payload: Any, limit: int) -> Acceptance:
        # One accepter of a source at a time: the count and the insert agree, so a backlog
        # never grows past its limit however many receivers run.
        self.conn.fetch(self.q.lock_connector, {"key": f"inbound/{source}"})
        key = {"source": source, "delivery_id": delivery_id}
        found = self.conn.fetch(self.q.inbound_by_delivery, key)
        if found:
            return Acceptance("duplicate", found[0]["id"])
        if self.backlog(source) >= limit:
            return Acceptance("full", None)
        rows = self.conn.fetch(self.q.insert_inbound, {**key, "payload": dumps(payload)})
        return Acceptance("accepted", rows[0]["id"])

    def take_batch(self, source: str, limit: int) -> builtins.list[InboundRow]:
        rows = self.conn.fetch(self.q.take_inbound, {"source": source, "limit": limit})
        return [_inbound(r) for r in rows]

    def mark_processed(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        return self.conn.run(self.q.mark_inbound_processed, {"ids": dumps(builtins.list(ids))})

    def backlog(self, source: str) -> int:
        return int(self.conn.fetch(self.q.inbound_backlog, {"source": source})[0]["n"])

    def backlogs(self) -> dict[str, int]:
        return {r["source"]: int(r["n"]) for r in self.conn.fetch(self.q.inbound_backlogs)}
