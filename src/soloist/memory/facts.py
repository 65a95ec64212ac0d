"""Canonical knowledge: versioned facts with provenance.

A write never overwrites or deletes: it adds a version that records the actor (an agent
and its version, or a person), the run and step that caused it, a reason, a validity
interval and an optional expiry. "Why do we believe X?" is :meth:`Memory.why`; a run's
writes are undone as a unit by :meth:`Memory.revert_run`, as new versions that say so.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from soloist.errors import DeterministicError, InputError, NotFound
from soloist.jsonvalues import check_finite
from soloist.memory.text import query_words
from soloist.store.base import EventRow, FactRow, NewEvent, Store, Transaction
from soloist.store.seam import glob_to_like


@dataclass(frozen=True)
class Cause:
    """Who changes memory, and why: nothing changes without them."""

    actor: str
    reason: str
    run_id: str | None = None
    step_id: str | None = None


@dataclass(frozen=True)
class FactWrite:
    """A write's version, and whether it was one made earlier for the same idempotency key
    (a retried dispatch replays it instead of writing again)."""

    row: FactRow
    replayed: bool = False


@dataclass(frozen=True)
class Explanation:
    """One version of a fact and the episodic events of the step that wrote it."""

    version: FactRow
    events: list[EventRow] = field(default_factory=list)


def is_current(row: FactRow, at: float) -> bool:
    if row.op == "forget":
        return False
    if row.valid_from > at or (row.valid_to is not None and row.valid_to <= at):
        return False
    return row.expires_at is None or row.expires_at > at


def may(scopes: Sequence[str], namespace: str) -> bool:
    """Whether namespace globs (an agent's memory grants) cover ``namespace``."""
    return any(fnmatch.fnmatchcase(namespace, scope) for scope in scopes)


def _name(value: str, what: str) -> str:
    if not value or len(value) > 200 or any(c in value for c in "\n\r\t"):
        raise InputError(f"{what} {value!r} must be 1 to 200 characters on one line")
    return value


class Memory:
    def __init__(self, store: Store, expiry: Mapping[str, float] | None = None) -> None:
        """``expiry``: seconds a fact lives, by namespace glob (``[memory.expiry]``)."""
        self.store = store
        self.expiry = dict(expiry or {})

    # -- writes ------------------------------------------------------------------------
    def put(self, namespace: str, subject: str, key: str, value: Any, cause: Cause, *,
            valid_from: float | None = None, valid_to: float | None = None,
            expires_at: float | None = None, scopes: Sequence[str] | None = None,
            sources: Sequence[dict[str, Any]] | None = None) -> FactRow:
        with self.store.transaction() as tx:
            return self.put_in(tx, namespace, subject, key, value, cause,
                               valid_from=valid_from, valid_to=valid_to,
                               expires_at=expires_at, scopes=scopes, sources=sources)

    def put_in(self, tx: Transaction, namespace: str, subject: str, key: str, value: Any,
               cause: Cause, *, op: str = "put", reverts: int | None = None,
               valid_from: float | None = None, valid_to: float | None = None,
               expires_at: float | None = None,
               scopes: Sequence[str] | None = None,
               sources: Sequence[dict[str, Any]] | None = None) -> FactRow:
        """A write inside the caller's transaction (a step persisting its intents);
        ``sources``: the references it was drawn from (its provenance), kept with it."""
        for value_, what in ((namespace, "namespace"), (subject, "subject"), (key, "key")):
            _name(value_, what)
        if not cause.reason.strip():
            raise InputError("a memory write needs a reason")
        check_finite(value, f"the value of {namespace}/{subject}/{key}")
        if scopes is not None and not may(scopes, namespace):
            raise DeterministicError(f"{cause.actor} may not write memory namespace "
                                     f"{namespace!r} (its scopes: {', '.join(scopes) or 'none'})")
        now = time.time()
        if expires_at is None and op == "put":
            ttl = next((t for glob, t in self.expiry.items()
                        if fnmatch.fnmatchcase(namespace, glob)), None)
            expires_at = None if ttl is None else now + ttl
        row = FactRow(namespace, subject, key, 0, op, value, cause.actor, cause.reason,
                      cause.run_id, cause.step_id, reverts,
                      now if valid_from is None else valid_from, valid_to, expires_at, now,
                      [dict(s) for s in sources] if sources else None)
        row.version = tx.facts.append(row)
        tx.events.append(NewEvent(f"memory.{op}", {
            "namespace": namespace, "subject": subject, "key": key, "version": row.version,
            "reason": cause.reason, "reverts": reverts,
            **({"sources": row.sources} if row.sources else {})}, run_id=cause.run_id,
            step_id=cause.step_id, actor=cause.actor, ts=now))
        return row

    def forget(self, namespace: str, subject: str, key: str, cause: Cause) -> FactRow:
        with self.store.transaction() as tx:
            return self.put_in(tx, namespace, subject, key, None, cause, op="forget")

    def revert_to(self, namespace: str, subject: str, key: str, version: int,
                  cause: Cause) -> FactRow:
        """A new version carrying the value of an older one."""
        with self.store.transaction() as tx:
            history = tx.facts.history(namespace, subject, key)
            target = next((r for r in history if r.version == version), None)
            if target is None:
                raise NotFound(f"{namespace}/{subject}/{key} has no version {version}")
            return self.put_in(tx, namespace, subject, key, target.value, cause,
                               op="forget" if target.op == "forget" else "revert",
                               reverts=version)

    def revert_run(self, run_id: str, cause: Cause) -> tuple[list[FactRow], list[str]]:
        """Undo every memory write of one run, as new versions that say so.

        A fact that a later run changed again is left as it is and reported, so a revert
        never silently discards someone else's newer knowledge.
        """
        written: list[FactRow] = []
        skipped: list[str] = []
        with self.store.transaction() as tx:
            touched = {(r.namespace, r.subject, r.key) for r in tx.facts.by_run(run_id)}
            if not touched and tx.runs.get(run_id) is None:  # a typo, not "nothing to undo"
                raise NotFound(f"no run {run_id!r}; `soloist runs` lists them")
            for namespace, subject, key in sorted(touched):
                history = tx.facts.history(namespace, subject, key)
                if history[-1].run_id != run_id:
                    skipped.append(f"{namespace}/{subject}/{key} (changed later by "
                                   f"{history[-1].actor})")
                    continue
                first = min(r.version for r in history if r.run_id == run_id)
                before = [r for r in history if r.version < first]
                if before and before[-1].op != "forget":
                    row = self.put_in(tx, namespace, subject, key, before[-1].value, cause,
                                      op="revert", reverts=before[-1].version)
                else:
                    row = self.put_in(tx, namespace, subject, key, None, cause, op="forget")
                written.append(row)
        return written, skipped

    # -- reads ---------------------------------------------------------------------------
    def get(self, namespace: str, subject: str, key: str, *,
            as_of: float | None = None) -> FactRow | None:
        """The current version (or the one current at ``as_of``), or None."""
        at = time.time() if as_of is None else as_of
        with self.store.read() as tx:
            history = tx.facts.history(namespace, subject, key)
        known = [r for r in history if r.recorded_at <= at]
        if not known or not is_current(known[-1], at):
            return None
        return known[-1]

    def history(self, namespace: str, subject: str, key: str) -> list[FactRow]:
        with self.store.read() as tx:
            rows = tx.facts.history(namespace, subject, key)
        if not rows:
            raise NotFound(f"nothing was ever written to {namespace}/{subject}/{key}")
        return rows

    def history_or_empty(self, namespace: str, subject: str, key: str) -> list[FactRow]:
        with self.store.read() as tx:
            return tx.facts.history(namespace, subject, key)

    def why(self, namespace: str, subject: str, key: str) -> list[Explanation]:
        """Every version with the events of the run step that caused it."""
        rows = self.history(namespace, subject, key)
        out: list[Explanation] = []
        with self.store.read() as tx:
            for row in rows:
                events = ([e for e in tx.events.list(run_id=row.run_id, limit=10_000)
                           if e.step_id == row.step_id or e.step_id is None]
                          if row.run_id else [])
                out.append(Explanation(row, events))
        return out

    def facts(self, namespace: str = "*", subject: str | None = None,
              limit: int = 200) -> list[FactRow]:
        """The current facts of the namespaces matching a glob (``leads/*``)."""
        now = time.time()
        with self.store.read() as tx:
            rows = tx.facts.latest(glob_to_like(namespace), subject, limit)
        return [r for r in rows if is_current(r, now)]

    def search(self, query: str, namespace: str = "*", k: int = 10, *,
               subject: str | None = None, as_of: float | None = None) -> list[FactRow]:
        """Current facts (or those current at ``as_of``) whose subject, key or value hold
        the query's words, best first."""
        at = time.time() if as_of is None else as_of
        with self.store.read() as tx:
            # Deeper than k: some matches are expired or outside their validity.
            rows = tx.facts.search(query_words(query), glob_to_like(namespace), subject, at,
                                   4 * k)
        return [row for row, _ in rows if is_current(row, at)][:k]
