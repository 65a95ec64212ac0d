"""Wait steps and the workspace's clock over the named queries of either backend
(``soloist.store.waits``)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from soloist.store.seam import Connection, Row, dumps, glob_to_like, loads
from soloist.store.waits import WaitRow


def _wait(row: Row) -> WaitRow:
    return WaitRow(
        run_id=row["run_id"], step_id=row["step_id"], topic=row["topic"],
        when=row["expression"], scope=loads(row["scope"]) or {}, deadline=row["deadline"],
        created_at=row["created_at"], outcome=row["outcome"], event=loads(row["event"]),
        resolved_at=row["resolved_at"])


class SqlWaits:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def lock(self) -> None:
        self.conn.fetch(self.q.lock_waits)

    def begin(self, row: WaitRow) -> WaitRow:
        self.conn.run(self.q.begin_wait, {
            "run_id": row.run_id, "step_id": row.step_id, "topic": row.topic,
            "expression": row.when, "scope": dumps(row.scope), "deadline": row.deadline,
            "created_at": row.created_at})
        found = self.get(row.run_id, row.step_id)
        assert found is not None
        return found

    def get(self, run_id: str, step_id: str) -> WaitRow | None:
        rows = self.conn.fetch(self.q.get_wait, {"run_id": run_id, "step_id": step_id})
        return _wait(rows[0]) if rows else None

    def open(self, limit: int = 10_000) -> builtins.list[WaitRow]:
        return [_wait(r) for r in self.conn.fetch(self.q.open_waits, {"limit": limit})]

    def due(self, now: float, limit: int = 500) -> builtins.list[WaitRow]:
        return [_wait(r) for r in self.conn.fetch(self.q.due_waits,
                                                  {"now": now, "limit": limit})]

    def resolve(self, run_id: str, step_id: str, outcome: str, event: Any,
                now: float) -> bool:
        return self.conn.run(self.q.resolve_wait, {
            "run_id": run_id, "step_id": step_id, "outcome": outcome,
            "event": dumps(event), "now": now}) > 0

    def wake(self, run_id: str, step_id: str, now: float) -> bool:
        return self.conn.run(self.q.wake_step,
                             {"run_id": run_id, "step_id": step_id, "now": now}) > 0

    def skip_open(self, run_id: str, now: float) -> builtins.list[tuple[str, str]]:
        rows = self.conn.fetch(self.q.skippable_steps, {"run_id": run_id})
        if rows:
            self.conn.run(self.q.skip_steps, {"ids": dumps([r["id"] for r in rows]),
                                              "now": now})
        return [(r["step_id"], r["state"]) for r in rows]

    def bus_since(self, topics: Sequence[str], since: float, limit: int = 10_000
                  ) -> builtins.list[dict[str, Any]]:
        patterns = dumps([glob_to_like(t) for t in topics])
        return [{"id": r["id"], "topic": r["topic"], "payload": loads(r["payload"]),
                 "run_id": r["run_id"]}
                for r in self.conn.fetch(self.q.bus_since, {"patterns": patterns,
                                                            "since": since, "limit": limit})]


class SqlClock:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def offset(self) -> float:
        rows = self.conn.fetch(self.q.clock_offset)
        return float(rows[0]["offset_seconds"]) if rows else 0.0

    def set_offset(self, seconds: float) -> None:
        self.conn.run(self.q.set_clock_offset, {"offset": seconds})
