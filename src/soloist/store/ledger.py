"""What a snapshot restore never rewinds, and what it is about to forget.

The **dispatch ledger** keeps every intent's outcome by idempotency key (and every
compensation's, by ``run/compensate:step``): a restore brings back intents that were
dispatched after the snapshot as not yet dispatched, and a replay of one of those keys must
return the recorded result rather than act twice on the outside world. The **version
marks** keep the highest version ever given to each definition (and memory's vector
generation), so that a deploy after a restore takes a new number instead of giving an old
number new content. The **process registry** (``tx.scheduler.worker_seen``) says which
workers and schedulers are alive now, which a snapshot's moment has nothing to say about.

All three live where a restore cannot reach them: on SQLite in a database file of their own,
attached to every connection as ``kept`` (the backup API copies and replaces ``main``
only); on PostgreSQL in tables that ``pg_dump`` leaves out of every snapshot.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from soloist.store.base import LedgerEntry
from soloist.store.seam import Connection, dumps, loads


def _entry(row: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(row["idempotency_key"], row["run_id"], row["step_id"], row["tool"],
                       row["status"], loads(row["result"]), row["error"], row["recorded_at"])


class SqlLedger:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def record(self, idempotency_key: str, status: str, result: Any, error: str | None,
               now: float) -> None:
        """Keep an intent's outcome; a key recorded as dispatched stays dispatched."""
        self.conn.run(self.q.ledger_record, {"key": idempotency_key, "status": status,
                                             "result": dumps(result), "error": error,
                                             "now": now})

    def dispatched(self, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        """The entries of these keys that were dispatched (whatever the store says now)."""
        if not keys:
            return {}
        rows = self.conn.fetch(self.q.ledger_dispatched, {"keys": dumps(builtins.list(keys))})
        return {r["idempotency_key"]: _entry(r) for r in rows}

    def since(self, since: float, limit: int = 1000) -> builtins.list[LedgerEntry]:
        rows = self.conn.fetch(self.q.ledger_since, {"since": since, "limit": limit})
        return [_entry(r) for r in rows]

    def version_mark(self, kind: str, name: str) -> int:
        """The highest version ever given to this definition (0: never deployed)."""
        rows = self.conn.fetch(self.q.version_mark, {"kind": kind, "name": name})
        return int(rows[0]["version"]) if rows else 0

    def mark_version(self, kind: str, name: str, version: int) -> None:
        self.conn.run(self.q.mark_version, {"kind": kind, "name": name, "version": version})


class SqlChanges:
    """What was written after a point in time: what a restore to then would forget."""

    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def runs_created(self, since: float, limit: int) -> builtins.list[dict[str, Any]]:
        return self.conn.fetch(self.q.runs_created_since, {"since": since, "limit": limit})

    def runs_finished(self, since: float, limit: int) -> builtins.list[dict[str, Any]]:
        """Runs that existed then and finished since."""
        return self.conn.fetch(self.q.runs_finished_since, {"since": since, "limit": limit})

    def facts(self, since: float, limit: int) -> builtins.list[dict[str, Any]]:
        return self.conn.fetch(self.q.facts_recorded_since, {"since": since, "limit": limit})

    def documents(self, since: float, limit: int) -> builtins.list[dict[str, Any]]:
        return self.conn.fetch(self.q.documents_written_since,
                               {"since": since, "limit": limit})

    def renew_generation(self, generation: int) -> None:
        """Give memory's vectors a generation no process has seen (after a restore), so
        that every process holding vectors in memory loads them anew."""
        self.conn.run(self.q.renew_generation, {"generation": generation})
