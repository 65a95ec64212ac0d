"""The working context of one agent step, assembled under a token budget.

What an agent sees: its instructions, the task, the most recent edits a person made to
earlier drafts of the same step (overrides), the current facts and the documents of the
namespaces it may read (the most relevant first), and the recent episodes of the same run.
Each part has a share of the budget; what does not fit is summarised by the ``light`` tier
when a summariser is given, or left out, and either way recorded. The record (ids
and token counts of what was included) goes into the log with the step, so an audit can
say what the agent saw (``soloist show RUN --step ID``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from soloist.memory.documents import Documents
from soloist.memory.facts import Memory
from soloist.store.base import Store

#: Token shares of the budget (what one part does not use is left to the next ones).
SHARES = {"instructions": 0.2, "task": 0.2, "overrides": 0.1, "facts": 0.25,
          "documents": 0.15, "episodes": 0.1}
MAX_OVERRIDE_FIELD = 600  # characters of one changed field shown in an example


def count_tokens(text: str) -> int:
    """An estimate with no tokenizer download: about 4 characters or 0.75 words a token."""
    return max(math.ceil(len(text) / 4), math.ceil(len(text.split()) / 0.75)) if text else 0


@dataclass
class Item:
    kind: str  # instructions | task | overrides | facts | documents | episodes | summary
    ref: str  # what it is: a fact's path@version, a chunk id, an event seq
    text: str
    tokens: int


@dataclass
class WorkingContext:
    items: list[Item] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)
    budget: int = 0
    #: the overrides found for the step (newest first), given whole to a fallback
    overrides: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(i.tokens for i in self.items)

    def section(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind]

    def record(self) -> dict[str, Any]:
        """What the log keeps: ids and token counts, not the texts again."""
        return {"budget": self.budget, "tokens": self.tokens,
                "included": [{"kind": i.kind, "ref": i.ref, "tokens": i.tokens}
                             for i in self.items],
                "left_out": self.left_out}

    def memory_text(self) -> str:
        parts: list[str] = []
        for kind, title in (("overrides", "How a person corrected earlier drafts (follow "
                                          "these examples)"),
                            ("facts", "Known facts"), ("documents", "Relevant documents"),
                            ("episodes", "Earlier in this run"), ("summary", "Summary of more")):
            lines = [i.text for i in self.section(kind)]
            if lines:
                parts.append(f"{title}:\n" + "\n".join(f"- {line}" for line in lines))
        return "\n\n".join(parts)


def override_text(override: Mapping[str, Any]) -> str:
    """One override as an example for the agent: what a person changed, and why."""
    before, after = override.get("before"), override.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        before = {k: before.get(k) for k in keys}
        after = {k: after.get(k) for k in keys}

    def shown(value: Any) -> str:
        text = json.dumps(value, default=str, ensure_ascii=False)
        return text if len(text) <= MAX_OVERRIDE_FIELD else text[:MAX_OVERRIDE_FIELD] + "…"

    reason = override.get("reason")
    return (f"A person changed an earlier draft at step {override.get('step')}: before "
            f"{shown(before)}, after {shown(after)}"
            + (f", because {reason}" if reason else ", giving no reason"))


def _clip(text: str, tokens: int) -> str:
    if count_tokens(text) <= tokens:
        return text
    size = max(0, tokens * 4 - 1)
    while size and count_tokens(text[:size] + "…") > tokens:
        size = int(size * 0.9)  # word-dense text: fewer characters a token
    return text[:size] + "…"


def build(*, instructions: str, task: str, budget: int, memory: Memory | None = None,
          documents: Documents | None = None, read_scopes: Sequence[str] = (),
          store: Store | None = None, run_id: str | None = None, subject: str | None = None,
          summarise: Callable[[str], str] | None = None,
          overrides: Sequence[Mapping[str, Any]] = ()) -> WorkingContext:
    """``overrides``: a person's recent edits of this step's drafts, newest first (each a
    ``Workspace.overrides`` entry); they come right after the task."""
    ctx = WorkingContext(budget=budget, overrides=[dict(o) for o in overrides])
    spare = 0

    def room(kind: str) -> int:
        return int(budget * SHARES[kind]) + spare

    def take(kind: str, candidates: list[tuple[str, str]]) -> int:
        """Add candidates in order while they fit; returns the unused tokens."""
        left = room(kind)
        over: list[tuple[str, str]] = []
        for ref, text in candidates:
            tokens = count_tokens(text)
            if tokens <= left:
                ctx.items.append(Item(kind, ref, text, tokens))
                left -= tokens
            else:
                over.append((ref, text))
        if over and summarise is not None and left > 20:
            summary = _clip(summarise("\n".join(t for _, t in over)), left)
            ctx.items.append(Item("summary", ",".join(r for r, _ in over), summary,
                                  count_tokens(summary)))
            left -= count_tokens(summary)
        elif over:
            ctx.left_out.extend({"kind": kind, "ref": r} for r, _ in over)
        return max(0, left)

    for kind, text in (("instructions", instructions), ("task", task)):
        clipped = _clip(text, room(kind))
        ctx.items.append(Item(kind, kind, clipped, count_tokens(clipped)))
        spare = max(0, room(kind) - count_tokens(clipped))
    # Always taken, so the share they leave unused goes on to the facts.
    spare = take("overrides", [(f"event:{o['id']}", override_text(o)) for o in overrides])
    if memory is not None and read_scopes:
        # The facts the task's words find first, then the rest of the scopes, newest first.
        relevant = [f for scope in read_scopes
                    for f in memory.search(task, scope, 20, subject=subject)]
        rest = [f for scope in read_scopes for f in memory.facts(scope, subject)]
        rest.sort(key=lambda f: f.recorded_at, reverse=True)
        seen: set[tuple[str, str, str]] = set()
        facts = []
        for f in [*relevant, *rest]:
            if (f.namespace, f.subject, f.key) not in seen:
                seen.add((f.namespace, f.subject, f.key))
                facts.append(f)
        spare = take("facts", [
            (f"{f.namespace}/{f.subject}/{f.key}@v{f.version}",
             f"{f.namespace}/{f.subject}/{f.key} = {json.dumps(f.value, default=str)}")
            for f in facts])
    if documents is not None and read_scopes:
        hits = [h for scope in read_scopes for h in documents.search(task, scope, 8)]
        hits.sort(key=lambda h: h.score, reverse=True)
        spare = take("documents", [(f"chunk:{h.chunk.id}", h.chunk.text) for h in hits])
    if store is not None and run_id is not None:
        with store.read() as tx:
            events = tx.events.list(run_id=run_id, limit=10_000)
        recent = [e for e in reversed(events)
                  if e.kind in ("step.transition", "approval.decided", "intent.dispatched")
                  and e.data.get("to") in (None, "done", "failed", "awaiting_approval")][:20]
        take("episodes", [(f"event:{e.seq}",
                           f"{e.step_id or ''} {e.kind} {json.dumps(e.data, default=str)}")
                          for e in recent])
    return ctx
