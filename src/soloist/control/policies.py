"""Policy rules: who may use which tool, and what needs a person's approval.

:func:`decide` is the policy engine: a pure function from a :class:`ToolRequest` and the
:class:`Policies` to a :class:`PolicyDecision`, which names the rule that made it so the
caller can log every decision. In order:

1. Grants bound everything: a tool the agent (or step) was not granted is denied, whatever
   the rules say (rule ``default:not-granted``). Text in an email cannot widen a grant.
2. Otherwise the first rule that matches decides. A rule whose ``when`` cannot be
   evaluated (a typo, a missing argument) denies, naming that rule: a broken condition
   never allows.
3. Otherwise a read is allowed (``default:read``) and so is a granted write
   (``default:granted``).

``allowed_hosts`` lists the hosts ``http.request`` may reach (see
``soloist.execution.tools.http``); empty, the default, reaches none. ``file_roots`` lists
the folders outside the workspace that the built-in file tools may write in (absolute
paths; see ``soloist.execution.tools.builtins.confine``); empty, the default, confines them
to the workspace.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from soloist.control import templating
from soloist.control.hosts import check_host_pattern
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
    allowed_hosts: list[str] = Field(default_factory=list)  # for http.request; empty: none
    file_roots: list[str] = Field(default_factory=list)  # for file tools; empty: workspace
    version: int | None = None  # assigned by deploy

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        return [check_host_pattern(host) for host in hosts]

    @field_validator("file_roots")
    @classmethod
    def _roots(cls, roots: list[str]) -> list[str]:
        return [check_file_root(root) for root in roots]

    @model_validator(mode="after")
    def _unique_names(self) -> Policies:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self


def check_file_root(root: str) -> str:
    """A ``file_roots`` entry, normalised: an absolute folder path without ``..``."""
    if not isinstance(root, str) or not root.strip() or "\x00" in root:
        raise ValueError(f"file_roots entry {root!r} is not a folder path")
    if not PurePosixPath(root).is_absolute():
        raise ValueError(f"file_roots entry {root!r} is relative; give an absolute folder "
                         "(the workspace itself is always allowed)")
    if ".." in PurePosixPath(root).parts:
        raise ValueError(f"file_roots entry {root!r} contains '..'; give the folder itself")
    normal = posixpath.normpath(root)
    if normal == "/":
        raise ValueError("file_roots entry '/' would let file tools write anywhere; name "
                         "the folders they may write in")
    return normal


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
    context = _context(agent, playbook, tool, tags, args)
    for rule in policies.rules:
        if not _names_match(rule, agent, playbook, tool, tags):
            continue
        if rule.match.when is not None and not evaluate(rule.match.when, context):
            continue
        return rule
    return None


@dataclass(frozen=True)
class ToolRequest:
    """One tool call to decide on: who asks, for what, and what they were granted.

    ``granted`` holds tool names or globs (``crm.*``) the agent or step may use; a step
    that names its tool directly grants that tool. ``effect`` is the effect of this call
    (``Tool.effect_for(args)``), so ``http.request`` with GET is a read; anything but
    ``"read"`` counts as a write.
    """

    tool: str
    effect: str
    granted: frozenset[str]
    agent: str | None = None
    playbook: str | None = None
    tags: tuple[str, ...] = ()
    args: Mapping[str, Any] = field(default_factory=dict)

    def is_granted(self) -> bool:
        return any(fnmatchcase(self.tool, pattern) for pattern in self.granted)


NOT_GRANTED = "default:not-granted"
DEFAULT_READ = "default:read"
DEFAULT_GRANTED = "default:granted"


@dataclass(frozen=True)
class PolicyDecision:
    """What may happen to a tool call, the rule that said so, and why."""

    decision: Decision
    rule: str  # a rule's name, or one of the built-in defaults ("default:...")
    reason: str
    policies_version: int | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    def as_dict(self) -> dict[str, Any]:
        """For the event log."""
        return {"decision": self.decision, "rule": self.rule, "reason": self.reason,
                "policies_version": self.policies_version}


def decide(request: ToolRequest, policies: Policies,
           evaluate: Evaluate = templating.evaluate) -> PolicyDecision:
    """The decision on ``request``: grants first, then the first matching rule, then defaults.

    Pure: no I/O, and the same request and policies always give the same decision.
    """
    version = policies.version
    who = f"agent {request.agent}" if request.agent else (
        f"playbook {request.playbook}" if request.playbook else "this step")
    if not request.is_granted():
        return PolicyDecision("deny", NOT_GRANTED,
                              f"tool {request.tool} is not granted to {who}", version)
    context = _context(request.agent, request.playbook, request.tool, request.tags,
                       request.args)
    effect = "read" if request.effect == "read" else "write"
    context["effect"] = effect
    for rule in policies.rules:
        if not _names_match(rule, request.agent, request.playbook, request.tool, request.tags):
            continue
        if rule.match.when is not None:
            try:
                applies = bool(evaluate(rule.match.when, context))
            except Exception as exc:
                detail = getattr(exc, "message", "") or str(exc) or type(exc).__name__
                return PolicyDecision(
                    "deny", rule.name,
                    f"rule {rule.name} could not evaluate its condition "
                    f"{rule.match.when!r}, so it denies: {detail.rstrip('.')}", version)
            if not applies:
                continue
        reason = rule.reason or f"rule {rule.name} says {rule.decision}"
        return PolicyDecision(rule.decision, rule.name, reason, version)
    if effect == "read":
        return PolicyDecision("allow", DEFAULT_READ,
                              f"tool {request.tool} reads and no rule applies", version)
    return PolicyDecision("allow", DEFAULT_GRANTED,
                          f"tool {request.tool} is granted to {who} and no rule applies",
                          version)


def _context(agent: str | None, playbook: str | None, tool: str | None,
             tags: Iterable[str], args: Mapping[str, Any]) -> dict[str, Any]:
    return {"args": args, "agent": agent, "playbook": playbook, "tool": tool,
            "tags": list(tags)}


def _names_match(rule: Rule, agent: str | None, playbook: str | None, tool: str | None,
                 tags: Collection[str]) -> bool:
    match = rule.match
    return (
        _glob(match.agent, agent)
        and _glob(match.playbook, playbook)
        and _glob(match.tool, tool)
        and all(tag in tags for tag in match.tags)
    )


def _glob(pattern: str | None, name: str | None) -> bool:
    if pattern is None:
        return True
    # Case-sensitive on every platform, so a policy means the same everywhere.
    return name is not None and fnmatchcase(name, pattern)
