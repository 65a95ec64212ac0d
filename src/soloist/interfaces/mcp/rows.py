"""What the MCP tools answer with: the workspace's rows as plain JSON objects.

Rows are dataclasses of JSON values and float timestamps (seconds since the epoch), so a
row becomes an object field by field; a few fields an MCP client has no use for (lease
bookkeeping, the log's hashes) are left out to keep answers short. Values come as the
store holds them, already redacted: nothing here adds or reveals a secret.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soloist.memory.facts import Explanation
    from soloist.store.base import DefinitionRow
    from soloist.workspace import PendingApproval, RunDetail

#: per row type, the fields left out
_OMIT: dict[str, frozenset[str]] = {
    "StepRow": frozenset({"lease_owner", "lease_expires", "lease_token", "pending_needs",
                          "resume"}),
    "EventRow": frozenset({"prev_hash", "hash"}),
}


def jsonable(value: Any) -> Any:
    """``value`` with every dataclass an object, every tuple a list, every key a string."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        omit = _OMIT.get(type(value).__name__, frozenset())
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in omit}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def playbook(row: DefinitionRow) -> dict[str, Any]:
    """A deployed playbook: what a client needs to start it (its inputs' schema)."""
    body = row.body if isinstance(row.body, dict) else {}
    steps = body.get("steps")
    return {"name": row.name, "version": row.version,
            "description": body.get("description"), "inputs": body.get("inputs"),
            "steps": [s.get("id") for s in steps if isinstance(s, dict)]
            if isinstance(steps, list) else [],
            "deployed_at": row.deployed_at, "deployed_by": row.deployed_by}


def run_detail(detail: RunDetail) -> dict[str, Any]:
    return {"run": jsonable(detail.run), "steps": jsonable(detail.steps),
            "intents": jsonable(detail.intents), "approvals": jsonable(detail.approvals)}


def pending(item: PendingApproval) -> dict[str, Any]:
    """A waiting approval with the exact intents that approving lets happen."""
    return {**jsonable(item.approval), "playbook": item.playbook,
            "intents": jsonable(item.intents), "output": jsonable(item.output),
            "already_dispatched": list(item.dispatched)}


def explanation(item: Explanation) -> dict[str, Any]:
    return {"version": jsonable(item.version), "events": jsonable(item.events)}
