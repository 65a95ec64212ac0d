"""The storage contract implemented once over named SQL queries.

Each backend supplies a :class:`Connection` (which translates its driver's errors) and a
queries object whose attributes hold that dialect's SQL under the same names. Nothing
here knows which database it talks to.
"""

from __future__ import annotations

import builtins
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from soloist.errors import StoreError
from soloist.store.access_repositories import SqlTokens
from soloist.store.base import (
    ApprovalRow,
    BreakerRow,
    BusMessage,
    ChainHead,
    DefinitionRow,
    EventRow,
    IntentRow,
    LLMCallRow,
    NewEvent,
    NewStep,
    Redaction,
    RunFilter,
    RunRow,
    SecretRow,
    StepRow,
    StepUpdate,
)
from soloist.store.connector_repositories import SqlBuckets, SqlCursors, SqlInbound
from soloist.store.ledger import SqlChanges, SqlLedger
from soloist.store.measures_repositories import SqlMeasures
from soloist.store.memory_repositories import SqlDocuments, SqlFacts
from soloist.store.seam import Connection, Row, VectorOps, dumps, like_literal, loads
from soloist.store.waits_repositories import SqlClock, SqlWaits


def chain_hash(prev_hash: str, seq: int, event: NewEvent, data_json: str) -> str:
    """The hash of one event: covers its content and the hash of the one before."""
    material = (
        f"{prev_hash}\x1f{seq}\x1f{event.ts!r}\x1f{event.kind}\x1f{event.run_id or ''}"
        f"\x1f{event.step_id or ''}\x1f{event.actor}\x1f{data_json}"
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _run(row: Row) -> RunRow:
    return RunRow(
        id=row["id"], playbook=row["playbook"], playbook_version=row["playbook_version"],
        state=row["state"], inputs=loads(row["inputs"]), queue=row["queue"],
        priority=row["priority"], created_at=row["created_at"], deadline_at=row["deadline_at"],
        finished_at=row["finished_at"], trigger=loads(row["trigger"]), error=row["error"],
        steps_remaining=row["steps_remaining"], created_by=row["created_by"],
        final_state=row["final_state"], pins=loads(row.get("pins")),
    )


def _step(row: Row) -> StepRow:
    return StepRow(
        id=row["id"], run_id=row["run_id"], step_id=row["step_id"], position=row["position"],
        kind=row["kind"], playbook=row["playbook"], playbook_version=row["playbook_version"],
        queue=row["queue"], priority=row["priority"], state=row["state"],
        resume=row["resume"], attempt=row["attempt"], pending_needs=row["pending_needs"],
        available_at=row["available_at"], lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"], lease_token=row["lease_token"],
        output=loads(row["output"]), error=row["error"], guidance=row["guidance"],
        created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _intent(row: Row) -> IntentRow:
    return IntentRow(
        run_id=row["run_id"], step_id=row["step_id"], idx=row["idx"],
        idempotency_key=row["idempotency_key"], tool=row["tool"], args=loads(row["args"]),
        description=row["description"], status=row["status"], result=loads(row["result"]),
        error=row["error"], created_at=row["created_at"], dispatched_at=row["dispatched_at"],
        undo=loads(row.get("undo")),
    )


def _approval(row: Row) -> ApprovalRow:
    return ApprovalRow(**row)


def _event(row: Row) -> EventRow:
    return EventRow(
        seq=row["seq"], ts=row["ts"], kind=row["kind"], run_id=row["run_id"],
        step_id=row["step_id"], actor=row["actor"], data=loads(row["data"]),
        prev_hash=row["prev_hash"], hash=row["hash"],
    )


def _definition(row: Row) -> DefinitionRow:
    return DefinitionRow(
        kind=row["kind"], name=row["name"], version=row["version"], digest=row["digest"],
        body=loads(row["body"]), source=row["source"], deployed_by=row["deployed_by"],
        deployed_at=row["deployed_at"], note=row["note"],
    )


def _matching(match: RunFilter) -> dict[str, Any]:
    text = None if match.text is None else f"%{like_literal(match.text)}%"
    return {"state": match.state, "playbook": match.playbook, "version": match.version,
            "since": match.since, "until": match.until, "text": text}


class SqlRuns:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def insert(self, run: RunRow) -> None:
        self.conn.run(self.q.insert_run, {
            "id": run.id, "playbook": run.playbook, "playbook_version": run.playbook_version,
            "state": run.state, "inputs": dumps(run.inputs), "queue": run.queue,
            "priority": run.priority, "created_at": run.created_at,
            "deadline_at": run.deadline_at, "trigger": dumps(run.trigger),
            "steps_remaining": run.steps_remaining, "created_by": run.created_by,
            "pins": None if run.pins is None else dumps(run.pins),
        })

    def get(self, run_id: str) -> RunRow | None:
        rows = self.conn.fetch(self.q.get_run, {"id": run_id})
        return _run(rows[0]) if rows else None

    def get_many(self, run_ids: Sequence[str]) -> dict[str, RunRow]:
        if not run_ids:
            return {}
        rows = self.conn.fetch(self.q.runs_by_ids, {"ids": dumps(builtins.list(run_ids))})
        return {r["id"]: _run(r) for r in rows}

    def list(self, *, state: str | None = None, playbook: str | None = None,
             limit: int = 100) -> builtins.list[RunRow]:
        params = {"state": state, "playbook": playbook, "limit": limit}
        return [_run(r) for r in self.conn.fetch(self.q.list_runs, params)]

    def page(self, match: RunFilter, *, before: tuple[float, str] | None = None,
             limit: int = 50) -> builtins.list[RunRow]:
        params = {**_matching(match), "limit": limit,
                  "before_at": before[0] if before else None,
                  "before_id": before[1] if before else None}
        return [_run(r) for r in self.conn.fetch(self.q.page_runs, params)]

    def reopen(self, run_id: str) -> bool:
        return self.conn.run(self.q.reopen_run, {"id": run_id}) == 1

    def count(self, match: RunFilter) -> int:
        return int(self.conn.fetch(self.q.count_runs, _matching(match))[0]["n"])

    def set_state(self, run_id: str, state: str, *, expect: Sequence[str],
                  error: str | None = None, finished_at: float | None = None,
                  final_state: str | None = None) -> bool:
        params = {"id": run_id, "state": state, "error": error, "finished_at": finished_at,
                  "expect": dumps(list(expect)), "final_state": final_state}
        return self.conn.run(self.q.set_run_state, params) == 1

    def step_finished(self, run_ids: Sequence[str]) -> builtins.list[tuple[str, int]]:
        if len(run_ids) == 1:
            rows = self.conn.fetch(self.q.decrement_remaining, {"id": run_ids[0], "n": 1})
            return [(run_ids[0], rows[0]["steps_remaining"])] if rows else []
        rows = self.conn.fetch(self.q.decrement_many, {"ids": dumps(builtins.list(run_ids))})
        return [(r["id"], r["steps_remaining"]) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self.conn.fetch(self.q.count_runs_by_state)}

    def past_deadline(self, now: float, limit: int) -> builtins.list[RunRow]:
        rows = self.conn.fetch(self.q.runs_past_deadline, {"now": now, "limit": limit})
        return [_run(r) for r in rows]


class SqlSteps:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def insert_many(self, steps: Sequence[NewStep]) -> None:
        self.conn.run_many(self.q.insert_step, [
            {"run_id": s.run_id, "step_id": s.step_id, "position": s.position,
             "kind": s.kind, "playbook": s.playbook, "playbook_version": s.playbook_version,
             "queue": s.queue, "priority": s.priority, "state": s.state,
             "pending_needs": s.pending_needs, "available_at": s.available_at,
             "created_at": s.created_at}
            for s in steps
        ])

    def claim(self, owner: str, now: float, lease_seconds: float, limit: int,
              exclude_playbooks: Sequence[str] = (), exclude_queues: Sequence[str] = ()
              ) -> builtins.list[StepRow]:
        params = {"owner": owner, "now": now, "expires": now + lease_seconds, "limit": limit,
                  "exclude_playbooks": dumps(list(exclude_playbooks)),
                  "exclude_queues": dumps(list(exclude_queues))}
        rows = [_step(r) for r in self.conn.fetch(self.q.claim_steps, params)]
        rows.sort(key=lambda s: (-s.priority, s.available_at, s.id))  # RETURNING has no order
        return rows

    def lock_for_limits(self) -> None:
        self.conn.fetch(self.q.lock_claims)

    def leased_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        by_playbook: dict[str, int] = {}
        by_queue: dict[str, int] = {}
        for r in self.conn.fetch(self.q.leased_counts):
            by_playbook[r["playbook"]] = by_playbook.get(r["playbook"], 0) + r["n"]
            by_queue[r["queue"]] = by_queue.get(r["queue"], 0) + r["n"]
        return by_playbook, by_queue

    def leased_by_owner(self) -> dict[str, int]:
        return {r["lease_owner"]: int(r["n"]) for r in self.conn.fetch(self.q.leased_by_owner)}

    def update_fenced(self, updates: Sequence[StepUpdate]) -> builtins.list[int]:
        refused: list[int] = []
        for u in updates:
            params = {
                "id": u.id, "token": u.lease_token, "state": u.state,
                "output": None if u.output is None else dumps(u.output), "error": u.error,
                "attempt": u.attempt, "available_at": u.available_at, "resume": u.resume,
                "keep_lease": 1 if u.keep_lease else 0, "finished_at": u.finished_at,
            }
            if self.conn.run(self.q.update_step_fenced, params) != 1:
                refused.append(u.id)
        return refused

    def lease_tokens(self, ids: Sequence[int]) -> dict[int, int]:
        rows = self.conn.fetch(self.q.lease_tokens, {"ids": dumps(builtins.list(ids))})
        return {r["id"]: r["lease_token"] for r in rows}

    def finish_many(self, updates: Sequence[StepUpdate]) -> None:
        self.conn.run_many(self.q.update_step_fenced, [
            {"id": u.id, "token": u.lease_token, "state": u.state,
             "output": None if u.output is None else dumps(u.output), "error": u.error,
             "attempt": u.attempt, "available_at": u.available_at, "resume": u.resume,
             "keep_lease": 1 if u.keep_lease else 0, "finished_at": u.finished_at}
            for u in updates
        ])

    def promote_many(self, pairs: Sequence[tuple[str, str]], now: float
                     ) -> builtins.list[tuple[str, str]]:
        if not pairs:
            return []
        rows = self.conn.fetch(self.q.promote_many,
                               {"pairs": dumps([builtins.list(p) for p in pairs]), "now": now})
        return [(r["run_id"], r["step_id"]) for r in rows if r["state"] == "ready"]

    def heartbeat(self, owner: str, ids: Sequence[int], expires: float) -> int:
        if not ids:
            return 0
        params = {"owner": owner, "ids": dumps(list(ids)), "expires": expires}
        return self.conn.run(self.q.heartbeat_steps, params)

    def expired(self, now: float, limit: int) -> builtins.list[StepRow]:
        return [_step(r) for r in self.conn.fetch(self.q.expired_leases,
                                                  {"now": now, "limit": limit})]

    def release_expired(self, step: StepRow, now: float) -> bool:
        resume = "dispatch" if step.state == "persisting" else "execute"
        params = {"id": step.id, "token": step.lease_token, "now": now, "resume": resume}
        return self.conn.run(self.q.release_expired, params) == 1

    def promote(self, run_id: str, step_ids: Sequence[str], now: float) -> builtins.list[str]:
        if not step_ids:
            return []
        params = {"run_id": run_id, "step_ids": dumps(list(step_ids)), "now": now}
        rows = self.conn.fetch(self.q.promote_steps, params)
        return [r["step_id"] for r in rows if r["state"] == "ready"]

    def for_run(self, run_id: str) -> builtins.list[StepRow]:
        return [_step(r) for r in self.conn.fetch(self.q.steps_for_run, {"run_id": run_id})]

    def get(self, run_id: str, step_id: str) -> StepRow | None:
        rows = self.conn.fetch(self.q.get_step, {"run_id": run_id, "step_id": step_id})
        return _step(rows[0]) if rows else None

    def outputs(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {run_id: {} for run_id in run_ids}
        if not run_ids:
            return out
        for r in self.conn.fetch(self.q.step_outputs, {"run_ids": dumps(list(run_ids))}):
            out[r["run_id"]][r["step_id"]] = loads(r["output"])
        return out

    def set_state(self, step_pk: int, state: str, *, expect: Sequence[str],
                  resume: str | None = None, attempt: int | None = None,
                  available_at: float | None = None, error: str | None = None,
                  guidance: str | None = None, finished_at: float | None = None) -> bool:
        params = {"id": step_pk, "state": state, "expect": dumps(list(expect)),
                  "resume": resume, "attempt": attempt, "available_at": available_at,
                  "error": error, "guidance": guidance, "finished_at": finished_at}
        return self.conn.run(self.q.set_step_state, params) == 1

    def reopen(self, step_pk: int, state: str, now: float) -> bool:
        return self.conn.run(self.q.reopen_step, {"id": step_pk, "state": state,
                                                  "now": now}) == 1

    def cancel_open(self, run_id: str, now: float) -> builtins.list[tuple[str, str]]:
        rows = self.conn.fetch(self.q.open_steps_for_run, {"run_id": run_id})
        self.conn.run(self.q.cancel_open_steps, {"run_id": run_id, "now": now})
        return [(r["step_id"], r["state"]) for r in rows]

    def next_available(self) -> float | None:
        rows = self.conn.fetch(self.q.next_available)
        return rows[0]["t"] if rows and rows[0]["t"] is not None else None


class SqlIntents:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def insert_many(self, intents: Sequence[IntentRow]) -> None:
        self.conn.run_many(self.q.insert_intent, [
            {"run_id": i.run_id, "step_id": i.step_id, "idx": i.idx,
             "idempotency_key": i.idempotency_key, "tool": i.tool, "args": dumps(i.args),
             "description": i.description, "status": i.status, "created_at": i.created_at}
            for i in intents
        ])

    def for_step(self, run_id: str, step_id: str) -> builtins.list[IntentRow]:
        rows = self.conn.fetch(self.q.intents_for_step, {"run_id": run_id, "step_id": step_id})
        return [_intent(r) for r in rows]

    def for_run(self, run_id: str) -> builtins.list[IntentRow]:
        return [_intent(r) for r in self.conn.fetch(self.q.intents_for_run, {"run_id": run_id})]

    def set_status(self, run_id: str, step_id: str, status: str, *,
                   expect: Sequence[str]) -> int:
        params = {"run_id": run_id, "step_id": step_id, "status": status,
                  "expect": dumps(list(expect))}
        return self.conn.run(self.q.set_intent_status, params)

    def set_args(self, run_id: str, step_id: str, idx: int, args: Any) -> bool:
        return self.conn.run(self.q.set_intent_args, {
            "run_id": run_id, "step_id": step_id, "idx": idx, "args": dumps(args)}) == 1

    def record_result(self, idempotency_key: str, status: str, result: Any,
                      error: str | None, now: float, undo: Any = None) -> None:
        self.conn.run(self.q.record_intent_result, {
            "key": idempotency_key, "status": status, "result": dumps(result),
            "error": error, "now": now, "undo": None if undo is None else dumps(undo),
        })
        # Kept where a restore cannot rewind it, so a replay is recognised even then.
        SqlLedger(self.conn, self.q).record(idempotency_key, status, result, error, now)

    def get(self, idempotency_key: str) -> IntentRow | None:
        rows = self.conn.fetch(self.q.intent_by_key, {"key": idempotency_key})
        return _intent(rows[0]) if rows else None

    def mark(self, idempotency_key: str, status: str, *, expect: Sequence[str],
             now: float) -> bool:
        return self.conn.run(self.q.mark_intent, {
            "key": idempotency_key, "status": status, "expect": dumps(list(expect)),
            "now": now}) > 0


class SqlApprovals:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def insert(self, approval: ApprovalRow) -> None:
        self.conn.run(self.q.insert_approval, {
            "id": approval.id, "run_id": approval.run_id, "step_id": approval.step_id,
            "attempt": approval.attempt, "reason": approval.reason,
            "message": approval.message, "created_at": approval.created_at,
            "expires_at": approval.expires_at, "default_decision": approval.default_decision,
        })

    def get(self, approval_id: str) -> ApprovalRow | None:
        rows = self.conn.fetch(self.q.get_approval, {"id": approval_id})
        return _approval(rows[0]) if rows else None

    def open(self, limit: int = 100) -> builtins.list[ApprovalRow]:
        return [_approval(r) for r in self.conn.fetch(self.q.open_approvals, {"limit": limit})]

    def for_run(self, run_id: str) -> builtins.list[ApprovalRow]:
        rows = self.conn.fetch(self.q.approvals_for_run, {"run_id": run_id})
        return [_approval(r) for r in rows]

    def decide(self, approval_id: str, decision: str, by: str, note: str | None,
               now: float) -> bool:
        params = {"id": approval_id, "decision": decision, "by": by, "note": note, "now": now}
        return self.conn.run(self.q.decide_approval, params) == 1

    def expired(self, now: float) -> builtins.list[ApprovalRow]:
        return [_approval(r) for r in self.conn.fetch(self.q.expired_approvals, {"now": now})]

    def decided_by_people(self, since: float) -> int:
        rows = self.conn.fetch(self.q.approvals_decided_by_people, {"since": since})
        return int(rows[0]["n"])

    def close_for_run(self, run_id: str, decision: str, by: str, now: float) -> int:
        params = {"run_id": run_id, "decision": decision, "by": by, "now": now}
        return self.conn.run(self.q.close_run_approvals, params)


class SqlEvents:
    """Buffers events and writes them, chained, when the transaction commits."""

    def __init__(self, conn: Connection, q: Any,
                 redact: Callable[[str], str] | None = None) -> None:
        self.conn, self.q = conn, q
        self.buffer: list[NewEvent] = []
        # Redacted before hashing, so that the chain covers exactly what is stored.
        self.redact = redact

    def append(self, event: NewEvent) -> None:
        self.buffer.append(event)

    def extend(self, events: Sequence[NewEvent]) -> None:
        self.buffer.extend(events)

    def flush(self) -> None:
        """Chain the buffered events onto the head; called last, just before commit."""
        if not self.buffer:
            return
        heads = self.conn.fetch(self.q.lock_chain_head)
        if not heads:
            # Chaining onto nothing would start a second chain over the first.
            raise StoreError("the chain head record is gone, so no event can be appended; "
                             "`soloist audit verify` shows what else is missing")
        seq, prev = heads[0]["seq"], heads[0]["hash"]
        rows: list[dict[str, Any]] = []
        now = time.time()
        for event in self.buffer:
            seq += 1
            if not event.ts:
                event.ts = now
            data_json = dumps(event.data)
            if self.redact is not None:
                data_json = self.redact(data_json)
                event.actor = self.redact(event.actor)
            digest = chain_hash(prev, seq, event, data_json)
            rows.append({"seq": seq, "ts": event.ts, "kind": event.kind,
                         "run_id": event.run_id, "step_id": event.step_id,
                         "actor": event.actor, "data": data_json, "prev_hash": prev,
                         "hash": digest})
            prev = digest
        self.conn.run_many(self.q.insert_event, rows)
        self.conn.run(self.q.set_chain_head, {"seq": seq, "hash": prev})
        self.buffer.clear()

    def list(self, *, run_id: str | None = None, after_seq: int = 0,
             limit: int = 1000) -> builtins.list[EventRow]:
        params = {"run_id": run_id, "after": after_seq, "limit": limit}
        return [_event(r) for r in self.conn.fetch(self.q.list_events, params)]

    def scan(self, after_seq: int, limit: int) -> builtins.list[EventRow]:
        params = {"after": after_seq, "limit": limit}
        return [_event(r) for r in self.conn.fetch(self.q.scan_events, params)]

    def of_kind(self, kind: str, *, before_seq: int | None = None,
                limit: int = 100) -> builtins.list[EventRow]:
        params = {"kind": kind, "before": before_seq, "limit": limit}
        return [_event(r) for r in self.conn.fetch(self.q.events_of_kind, params)]

    def head(self) -> ChainHead | None:
        rows = self.conn.fetch(self.q.chain_head)
        return ChainHead(int(rows[0]["seq"]), str(rows[0]["hash"])) if rows else None


class SqlRegistry:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def latest(self, kind: str, name: str) -> DefinitionRow | None:
        rows = self.conn.fetch(self.q.latest_definition, {"kind": kind, "name": name})
        return _definition(rows[0]) if rows else None

    def get(self, kind: str, name: str, version: int) -> DefinitionRow | None:
        params = {"kind": kind, "name": name, "version": version}
        rows = self.conn.fetch(self.q.get_definition, params)
        return _definition(rows[0]) if rows else None

    def insert(self, row: DefinitionRow) -> None:
        self.conn.run(self.q.insert_definition, {
            "kind": row.kind, "name": row.name, "version": row.version, "digest": row.digest,
            "body": dumps(row.body), "source": row.source, "deployed_by": row.deployed_by,
            "deployed_at": row.deployed_at, "note": row.note,
        })

    def history(self, kind: str, name: str) -> builtins.list[DefinitionRow]:
        rows = self.conn.fetch(self.q.definition_history, {"kind": kind, "name": name})
        return [_definition(r) for r in rows]

    def all_latest(self, kind: str | None = None) -> builtins.list[DefinitionRow]:
        return [_definition(r) for r in self.conn.fetch(self.q.all_latest, {"kind": kind})]


class SqlBus:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def publish(self, topic: str, payload: Any, run_id: str | None, now: float) -> None:
        self.conn.run(self.q.publish, {"topic": topic, "payload": dumps(payload),
                                       "run_id": run_id, "now": now})

    def pending(self, limit: int) -> builtins.list[BusMessage]:
        return [
            BusMessage(id=r["id"], topic=r["topic"], payload=loads(r["payload"]),
                       run_id=r["run_id"], created_at=r["created_at"])
            for r in self.conn.fetch(self.q.pending_bus, {"limit": limit})
        ]

    def mark_processed(self, ids: Sequence[int], now: float) -> None:
        if ids:
            self.conn.run(self.q.mark_bus_processed, {"ids": dumps(list(ids)), "now": now})


class SqlSchedulerState:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def try_lead(self, name: str, owner: str, now: float, ttl: float) -> bool:
        params = {"name": name, "owner": owner, "now": now, "expires": now + ttl}
        rows = self.conn.fetch(self.q.try_lead, params)
        return bool(rows) and rows[0]["owner"] == owner

    def resign(self, name: str, owner: str) -> None:
        self.conn.run(self.q.resign, {"name": name, "owner": owner})

    def cron_last(self, playbook: str, index: int) -> float | None:
        rows = self.conn.fetch(self.q.cron_last, {"playbook": playbook, "idx": index})
        return rows[0]["last_fire"] if rows else None

    def cron_set(self, playbook: str, index: int, fired_at: float) -> None:
        self.conn.run(self.q.cron_set, {"playbook": playbook, "idx": index, "t": fired_at})

    def worker_seen(self, worker_id: str, info: dict[str, Any], now: float, *,
                    started_at: float | None = None, version: str | None = None) -> None:
        self.conn.run(self.q.worker_seen, {"id": worker_id, "info": dumps(info), "now": now,
                                           "started_at": started_at, "version": version})

    def workers(self, since: float) -> builtins.list[dict[str, Any]]:
        return [
            {"id": r["id"], "heartbeat_at": r["heartbeat_at"], "started_at": r["started_at"],
             "version": r["version"], "drain_requested_at": r["drain_requested_at"],
             **loads(r["info"])}
            for r in self.conn.fetch(self.q.list_workers, {"since": since})
        ]

    def worker_gone(self, worker_id: str) -> None:
        self.conn.run(self.q.worker_gone, {"id": worker_id})

    def request_drain(self, worker_id: str, now: float) -> bool:
        return self.conn.run(self.q.request_drain, {"id": worker_id, "now": now}) == 1

    def drain_requested(self, worker_id: str) -> bool:
        rows = self.conn.fetch(self.q.drain_requested, {"id": worker_id})
        return bool(rows) and rows[0]["drain_requested_at"] is not None


class SqlSecrets:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def put(self, name: str, ciphertext: str, now: float, actor: str) -> None:
        self.conn.run(self.q.put_secret, {"name": name, "ciphertext": ciphertext, "now": now,
                                          "by": actor})
        self._restamp()

    def get(self, name: str) -> SecretRow | None:
        rows = self.conn.fetch(self.q.get_secret, {"name": name})
        return SecretRow(**rows[0]) if rows else None

    def all(self) -> builtins.list[SecretRow]:
        return [SecretRow(**r) for r in self.conn.fetch(self.q.list_secrets)]

    def delete(self, name: str) -> bool:
        deleted = self.conn.run(self.q.delete_secret, {"name": name}) == 1
        if deleted:
            self._restamp()
        return deleted

    def stamp(self) -> str:
        return str(self.conn.fetch(self.q.secrets_stamp)[0]["stamp"])

    def _restamp(self) -> None:
        # Random, not a counter: a restored snapshot brings back an older state under its
        # own stamp, which no process can mistake for the state it has loaded since.
        self.conn.run(self.q.set_secrets_stamp, {"stamp": uuid.uuid4().hex})


#: Parameters that are digests, ciphertext or stamps, never text a secret could hide in.
_OPAQUE = frozenset({"hash", "prev_hash", "digest", "ciphertext", "stamp"})


class SqlCosts:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def record(self, calls: Sequence[LLMCallRow]) -> None:
        self.conn.run_many(self.q.insert_llm_call, [
            {"run_id": c.run_id, "step_id": c.step_id, "playbook": c.playbook,
             "provider": c.provider, "model": c.model, "input_tokens": c.input_tokens,
             "output_tokens": c.output_tokens, "latency_ms": c.latency_ms,
             "cost_usd": c.cost_usd, "cached": 1 if c.cached else 0,
             "created_at": c.created_at}
            for c in calls
        ])

    def for_run(self, run_id: str) -> builtins.list[LLMCallRow]:
        return [
            LLMCallRow(r["run_id"], r["step_id"], r["playbook"], r["provider"], r["model"],
                       r["input_tokens"], r["output_tokens"], r["latency_ms"], r["cost_usd"],
                       bool(r["cached"]), r["created_at"])
            for r in self.conn.fetch(self.q.llm_calls_for_run, {"run_id": run_id})
        ]

    def spent(self, since: float, *, playbook: str | None = None,
              run_id: str | None = None) -> float:
        rows = self.conn.fetch(self.q.spent_since,
                               {"since": since, "playbook": playbook, "run_id": run_id})
        return float(rows[0]["usd"] or 0.0)

    def rollup(self, since: float) -> builtins.list[dict[str, Any]]:
        return [dict(r) for r in self.conn.fetch(self.q.cost_rollup, {"since": since})]


class SqlCache:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def get(self, key: str) -> Any:
        rows = self.conn.fetch(self.q.cache_get, {"key": key})
        return loads(rows[0]["response"]) if rows else None

    def hit(self, key: str) -> None:
        self.conn.run(self.q.cache_hit, {"key": key})

    def put(self, key: str, response: Any, now: float) -> None:
        self.conn.run(self.q.cache_put, {"key": key, "response": dumps(response), "now": now})


class SqlBreakers:
    def __init__(self, conn: Connection, q: Any) -> None:
        self.conn, self.q = conn, q

    def get(self, name: str) -> BreakerRow | None:
        rows = self.conn.fetch(self.q.get_breaker, {"name": name})
        return BreakerRow(**rows[0]) if rows else None

    def put(self, row: BreakerRow) -> None:
        self.conn.run(self.q.put_breaker, {"name": row.name, "state": row.state,
                                           "failures": row.failures,
                                           "opened_at": row.opened_at, "now": row.updated_at})

    def all(self) -> builtins.list[BreakerRow]:
        return [BreakerRow(**r) for r in self.conn.fetch(self.q.list_breakers)]


class RedactingConnection:
    """Passes every string parameter through the redactor before it reaches the driver.

    Secrets must never be stored in clear: not in the log, not in an output or an error.
    Redacting at this one seam covers every table, whatever a step or tool put in a value.
    """

    def __init__(self, inner: Connection, redact: Callable[[str], str]) -> None:
        self.inner = inner
        self.redact = redact

    def _clean(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        if not params:
            return params
        return {k: self.redact(v) if isinstance(v, str) and k not in _OPAQUE else v
                for k, v in params.items()}

    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> builtins.list[Row]:
        return self.inner.fetch(sql, self._clean(params))

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        return self.inner.run(sql, self._clean(params))

    def run_many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        self.inner.run_many(sql, [self._clean(p) or {} for p in params])


class SqlTransaction:
    """The aggregates of one transaction on one connection.

    A write transaction first reads the secrets' stamp, so that its redactor knows every
    secret committed before it began (one small read; the redactor reloads only when the
    stamp changed).
    """

    def __init__(self, conn: Connection, q: Any,
                 redaction: Redaction | None = None,
                 vectors: VectorOps | None = None, *, write: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        #: The deployment's clock (the database server's on PostgreSQL): see store.clock.
        self.now = clock
        redact: Callable[[str], str] | None = None
        if redaction is not None:
            if write:
                secrets = SqlSecrets(conn, q)
                redact = redaction.redactor(secrets.stamp(), secrets.all)
            else:
                redact = redaction.last()
        if redact is not None:
            conn = RedactingConnection(conn, redact)
        self.runs = SqlRuns(conn, q)
        self.steps = SqlSteps(conn, q)
        self.intents = SqlIntents(conn, q)
        self.approvals = SqlApprovals(conn, q)
        self.events = SqlEvents(conn, q, redact)
        self.registry = SqlRegistry(conn, q)
        self.bus = SqlBus(conn, q)
        self.scheduler = SqlSchedulerState(conn, q)
        self.secrets = SqlSecrets(conn, q)
        self.costs = SqlCosts(conn, q)
        self.cache = SqlCache(conn, q)
        self.breakers = SqlBreakers(conn, q)
        self.facts = SqlFacts(conn, q)
        self.documents = SqlDocuments(conn, q, vectors)
        self.ledger = SqlLedger(conn, q)
        self.changes = SqlChanges(conn, q)
        self.cursors = SqlCursors(conn, q)
        self.buckets = SqlBuckets(conn, q)
        self.inbound = SqlInbound(conn, q)
        self.tokens = SqlTokens(conn, q)
        self.measures = SqlMeasures(conn, q)
        self.waits = SqlWaits(conn, q)
        self.clock = SqlClock(conn, q)
        self.wants_notify = False

    def notify_ready(self) -> None:
        self.wants_notify = True
