"""Policy rules: who may use which tool, and what needs a person's approval.

Only the model and rule matching live here; the policy engine that acts on a decision
comes later. Rules are checked in order and the first that matches decides.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import Field, model_validator

from soloist.control.playbooks import Model

Decision = Literal["allow", "deny", "needs_approval"]
Evaluate = Callable[[str, Mapping[str, Any]], Any]


class RuleMatch(Model):
    """What a rule applies to; a field left out matches anything."""

    agent: str | None = None  # glob over agent names
    playbook: str | None = None  # glob over playbook names
    tool: str | None = None  # glob over tool names
    tags: list[str] = Field(default_factory=list)  # the tool must carry all of these
    when: str | None = None  # an expression over ``args`` (the tool call's arguments)


class Rule(Model):
    name: str
    match: RuleMatch = Field(default_factory=RuleMatch)
    decision: Decision
    reason: str = ""


class Policies(Model):
    rules: list[Rule] = Field(default_factory=list)
    version: int | None = None  # assigned by deploy

    @model_validator(mode="after")
    def _unique_names(self) -> Policies:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self


def first_match(
    policies: Policies,
    *,
    agent: str | None,
    playbook: str | None,
    tool: str | None,
    tags: Collection[str],
    args: Mapping[str, Any],
    evaluate: Evaluate,
) -> Rule | None:
    """The first rule that applies to this tool call, or ``None``.

    A glob never matches a missing name: a rule for ``agent: "*"`` does not apply to a
    step that runs without an agent. ``when`` is evaluated last, only for rules whose
    names and tags match, with ``args``, ``agent``, ``playbook``, ``tool`` and ``tags`` in
    its context; an error it raises propagates, so the caller decides how to fail.
    """
    context: dict[str, Any] = {
        "args": args,
        "agent": agent,
        "playbook": playbook,
        "tool": tool,
        "tags": list(tags),
    }
    for rule in policies.rules:
        match = rule.match
        if not (
            _glob(match.agent, agent)
            and _glob(match.playbook, playbook)
            and _glob(match.tool, tool)
            and all(tag in tags for tag in match.tags)
        ):
            continue
        if match.when is not None and not evaluate(match.when, context):
            continue
        return rule
    return None


def _glob(pattern: str | None, name: str | None) -> bool:
    if pattern is None:
        return True
    # Case-sensitive on every platform, so a policy means the same everywhere.
    return name is not None and fnmatchcase(name, pattern)
