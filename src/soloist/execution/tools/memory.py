"""Memory as tools for agents: reads run at once, writes are staged intents.

``memory.search``, ``memory.get``, ``memory.history`` and ``memory.document`` are reads.
``memory.put``, ``memory.forget`` and ``memory.write`` (a document) are writes: staged,
checked, possibly approved, then dispatched, and the version they add names the run and
step that caused it, and what it was drawn from (``sources``). Namespace scopes (an agent's
``memory.read`` / ``memory.write`` globs) are enforced by the agent loop before any call,
never by the prompt.

The tools call the same memory service as ``soloist memory`` (the workspace, through
:class:`MemoryService`), so an agent's write and a person's are made alike.
"""

from __future__ import annotations

from typing import Any, Protocol

from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Tool, spec_of, tool
from soloist.memory.documents import DocumentWrite
from soloist.memory.facts import FactWrite
from soloist.memory.search import MemoryHit
from soloist.store.base import DocumentRow, FactRow

READ_TAG = "memory:read"
WRITE_TAG = "memory:write"
MAX_HITS = 50  # what one search hands an agent, whatever k it asks for


class MemoryService(Protocol):
    """What the memory tools need from the workspace (which the execution plane cannot
    import): its memory service methods."""

    def search_memory(self, query: str, namespace: str = "*", k: int = 10, *,
                      subject: str | None = None,
                      recency_days: float | None = None) -> list[MemoryHit]: ...

    def get_fact(self, namespace: str, subject: str, key: str) -> FactRow | None: ...

    def fact_history(self, namespace: str, subject: str, key: str) -> list[FactRow]: ...

    def put_fact(self, namespace: str, subject: str, key: str, value: Any, reason: str, *,
                 actor: str | None = None, run_id: str | None = None,
                 step_id: str | None = None, once: str | None = None,
                 sources: list[Any] | None = None) -> FactWrite: ...

    def forget_fact(self, namespace: str, subject: str, key: str, reason: str, *,
                    actor: str | None = None, run_id: str | None = None,
                    step_id: str | None = None, once: str | None = None) -> FactWrite: ...

    def write_document(self, namespace: str, key: str, text: str, reason: str, *,
                       metadata: dict[str, Any] | None = None,
                       sources: list[Any] | None = None, actor: str | None = None,
                       run_id: str | None = None, step_id: str | None = None,
                       once: str | None = None) -> DocumentWrite: ...

    def run_document(self, namespace: str, key: str, run_id: str | None = None
                     ) -> DocumentRow: ...


def memory_tools(service: MemoryService) -> list[Tool]:
    @tool("memory.search", effect="read", tags=(READ_TAG,))
    def search(query: str, namespace: str = "*", k: int = 5, subject: str | None = None,
               recency_days: float | None = None) -> list[dict[str, Any]]:
        """Search memory: documents and notes (keyword and vector search) and facts (by
        subject, key and value). subject keeps one subject's; recency_days favours recent
        documents."""
        return [hit.as_dict() for hit in service.search_memory(
            query, namespace, max(1, min(k, MAX_HITS)), subject=subject,
            recency_days=recency_days)]

    @tool("memory.get", effect="read", tags=(READ_TAG,))
    def get(namespace: str, subject: str, key: str) -> dict[str, Any] | None:
        """The current value of a fact, with its version and who wrote it."""
        row = service.get_fact(namespace, subject, key)
        return None if row is None else {"value": row.value, "version": row.version,
                                         "by": row.actor, "reason": row.reason}

    @tool("memory.history", effect="read", tags=(READ_TAG,))
    def history(namespace: str, subject: str, key: str) -> list[dict[str, Any]]:
        """Every version of a fact, oldest first."""
        return [{"version": r.version, "op": r.op, "value": r.value, "by": r.actor,
                 "reason": r.reason} for r in service.fact_history(namespace, subject, key)]

    @tool("memory.document", effect="read", tags=(READ_TAG,))
    def document(namespace: str, key: str, call: ToolCall) -> dict[str, Any]:
        """A document's text: the version this run pinned, else the newest."""
        row = service.run_document(namespace, key, call.run_id or None)
        return {"text": row.text, "version": row.version, "by": row.actor,
                "reason": row.reason, "metadata": row.metadata}

    @tool("memory.put", effect="write", idempotent=True, tags=(WRITE_TAG,))
    def put(namespace: str, subject: str, key: str, value: Any, reason: str,
            call: ToolCall, sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Record a fact (a new version; nothing is overwritten). sources: what it was
        drawn from, e.g. [{"kind": "email", "message_id": "<...>"}]."""
        return _result(service.put_fact(namespace, subject, key, value, reason,
                                        sources=sources, **_caused_by(call)))

    @tool("memory.write", effect="write", idempotent=True, tags=(WRITE_TAG,))
    def write(namespace: str, key: str, text: str, reason: str, call: ToolCall,
              metadata: dict[str, Any] | None = None,
              sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Write a document (a new version; earlier ones stay in its history). sources:
        what it was drawn from, e.g. [{"kind": "email", "message_id": "<...>"}]."""
        written = service.write_document(namespace, key, text, reason, metadata=metadata,
                                         sources=sources, **_caused_by(call))
        return ({"version": written.row.version, "replayed": True} if written.replayed
                else {"version": written.row.version})

    @tool("memory.forget", effect="write", idempotent=True, tags=(WRITE_TAG,))
    def forget(namespace: str, subject: str, key: str, reason: str,
               call: ToolCall) -> dict[str, Any]:
        """Mark a fact as no longer true (it stays in history)."""
        return _result(service.forget_fact(namespace, subject, key, reason,
                                           **_caused_by(call)))

    return [spec_of(fn) for fn in (search, get, history, document, put, forget, write)]


def _caused_by(call: ToolCall) -> dict[str, str | None]:
    """The run and step that write, as whom; once per idempotency key, so that a retried
    dispatch replays the version instead of writing again."""
    return {"actor": call.actor or f"run:{call.run_id}", "run_id": call.run_id,
            "step_id": call.step_id, "once": call.idempotency_key}


def _result(write: FactWrite) -> dict[str, Any]:
    return ({"version": write.row.version, "replayed": True} if write.replayed
            else {"version": write.row.version})
