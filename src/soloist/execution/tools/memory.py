"""Memory as tools for agents: reads run at once, writes are staged intents.

``memory.search``, ``memory.get`` and ``memory.history`` are reads. ``memory.put`` and
``memory.forget`` are writes: staged, checked, possibly approved, then dispatched, and the
version they add names the run and step that caused it. Namespace scopes (an agent's
``memory.read`` / ``memory.write`` globs) are enforced by the agent loop before any call,
never by the prompt.
"""

from __future__ import annotations

from typing import Any

from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Tool, spec_of, tool
from soloist.memory.documents import Documents
from soloist.memory.facts import Cause, Memory
from soloist.memory.search import search_memory

READ_TAG = "memory:read"
WRITE_TAG = "memory:write"


def memory_tools(memory: Memory, documents: Documents) -> list[Tool]:
    @tool("memory.search", effect="read", tags=(READ_TAG,))
    def search(query: str, namespace: str = "*", k: int = 5, subject: str | None = None,
               recency_days: float | None = None) -> list[dict[str, Any]]:
        """Search memory: documents and notes (keyword and vector search) and facts (by
        subject, key and value). subject keeps one subject's; recency_days favours recent
        documents."""
        return [hit.as_dict() for hit in search_memory(
            memory, documents, query, namespace, max(1, min(k, 50)), subject=subject,
            recency_days=recency_days)]

    @tool("memory.get", effect="read", tags=(READ_TAG,))
    def get(namespace: str, subject: str, key: str) -> dict[str, Any] | None:
        """The current value of a fact, with its version and who wrote it."""
        row = memory.get(namespace, subject, key)
        return None if row is None else {"value": row.value, "version": row.version,
                                         "by": row.actor, "reason": row.reason}

    @tool("memory.history", effect="read", tags=(READ_TAG,))
    def history(namespace: str, subject: str, key: str) -> list[dict[str, Any]]:
        """Every version of a fact, oldest first."""
        return [{"version": r.version, "op": r.op, "value": r.value, "by": r.actor,
                 "reason": r.reason} for r in memory.history(namespace, subject, key)]

    @tool("memory.put", effect="write", idempotent=True, tags=(WRITE_TAG,))
    def put(namespace: str, subject: str, key: str, value: Any, reason: str,
            call: ToolCall) -> dict[str, Any]:
        """Record a fact (a new version; nothing is overwritten)."""
        return _once(memory, namespace, subject, key, call, lambda cause: memory.put(
            namespace, subject, key, value, cause), reason)

    @tool("memory.forget", effect="write", idempotent=True, tags=(WRITE_TAG,))
    def forget(namespace: str, subject: str, key: str, reason: str,
               call: ToolCall) -> dict[str, Any]:
        """Mark a fact as no longer true (it stays in history)."""
        return _once(memory, namespace, subject, key, call, lambda cause: memory.forget(
            namespace, subject, key, cause), reason)

    return [spec_of(fn) for fn in (search, get, history, put, forget)]


def _once(memory: Memory, namespace: str, subject: str, key: str, call: ToolCall,
          write: Any, reason: str) -> dict[str, Any]:
    """Apply a write once per idempotency key: a retried dispatch replays the version."""
    marker = f"[{call.idempotency_key}]"
    for row in reversed(memory.history_or_empty(namespace, subject, key)):
        if row.reason.endswith(marker):
            return {"version": row.version, "replayed": True}
    actor = call.actor or f"run:{call.run_id}"
    row = write(Cause(actor, f"{reason} {marker}", call.run_id, call.step_id))
    return {"version": row.version}
