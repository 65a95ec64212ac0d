"""A person's overrides: the edits made to drafts at gates, read from the episodic log.

Each edit at a gate is an ``approval.override`` event (orchestration/gates.py): the intent
before and after, the reason, and the agent steps whose drafts it corrects (``sources``).
This read model lists them for people (``soloist overrides``, ``GET /overrides``, the
dashboard) and gives an agent step its own most recent ones as examples. Nothing else is
learned from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soloist.errors import InputError
from soloist.store.base import EventRow, Store

KIND = "approval.override"
MAX_LIMIT = 1000
_PAGE = 500


def entry(event: EventRow) -> dict[str, Any]:
    """One override as every interface shows it."""
    data = event.data if isinstance(event.data, dict) else {}
    sources = data.get("sources")
    return {
        "id": event.seq, "at": event.ts, "actor": event.actor,
        "approval": data.get("approval"), "run": event.run_id,
        "playbook": data.get("playbook"), "step": event.step_id,
        "sources": sources if isinstance(sources, list) else [],
        "tool": data.get("tool"), "before": data.get("before"), "after": data.get("after"),
        "reason": data.get("reason"),
    }


def _matches(item: dict[str, Any], agent: str | None, playbook: str | None,
             step: str | None) -> bool:
    sources = [s for s in item["sources"] if isinstance(s, dict)]
    if playbook is not None and item["playbook"] != playbook:
        return False
    if agent is not None and not any(s.get("agent") == agent for s in sources):
        return False
    return step is None or item["step"] == step or any(s.get("step") == step
                                                        for s in sources)


def listed(store: Store, *, agent: str | None = None, playbook: str | None = None,
           step: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The overrides that match, newest first. ``step`` matches the gated step or a
    source step; ``agent`` a source's agent."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"the limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return _collect(store, limit, lambda item: _matches(item, agent, playbook, step))


def examples(store: Store, *, playbook: str, step: str, agent: str,
             limit: int) -> list[dict[str, Any]]:
    """The most recent overrides of drafts made by ``agent`` at step ``step`` of
    ``playbook``: what its working context shows as examples."""
    if limit <= 0:
        return []
    wanted = {"step": step, "agent": agent}
    return _collect(store, limit, lambda item: item["playbook"] == playbook and any(
        isinstance(s, dict) and {k: s.get(k) for k in wanted} == wanted
        for s in item["sources"]))


def _collect(store: Store, limit: int, keep: Callable[[dict[str, Any]], bool]
             ) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    before: int | None = None
    with store.read() as tx:
        while len(found) < limit:
            page = tx.events.of_kind(KIND, before_seq=before, limit=_PAGE)
            for event in page:
                item = entry(event)
                if keep(item):
                    found.append(item)
                    if len(found) == limit:
                        break
            if len(page) < _PAGE:
                break
            before = page[-1].seq
    return found
