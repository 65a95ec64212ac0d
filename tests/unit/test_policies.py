"""The policy engine: grants bound everything, then the first matching rule decides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from soloist.control.loader import load_text
from soloist.control.policies import (
    DEFAULT_GRANTED,
    DEFAULT_READ,
    NOT_GRANTED,
    Policies,
    PolicyDecision,
    ToolRequest,
    decide,
)
from soloist.errors import DefinitionError

POLICIES = """\
rules:
  - name: interns-never-delete
    match: {agent: "intern*", tool: "*.delete"}
    decision: deny
    reason: interns cannot delete
  - name: big-payments
    match: {tool: "payments.*", when: "args.amount > 500"}
    decision: needs_approval
    reason: payments over 500 need a person
  - name: money-tag
    match: {tags: [money, external]}
    decision: needs_approval
  - name: board-playbook-allows-payments
    match: {playbook: "board-*", tool: "payments.*"}
    decision: allow
    reason: the board may pay
  - name: no-payments
    match: {tool: "payments.*"}
    decision: deny
    reason: payments only from board playbooks
"""


def policies(text: str = POLICIES) -> Policies:
    return load_text(text, "policies.yaml", Policies)


def request(tool: str, *, effect: str = "write", granted: tuple[str, ...] = ("*",),
            agent: str | None = "clerk", playbook: str | None = "invoice",
            tags: tuple[str, ...] = (), args: Mapping[str, Any] | None = None) -> ToolRequest:
    return ToolRequest(tool=tool, effect=effect,
                       granted=frozenset(granted), agent=agent, playbook=playbook,
                       tags=tags, args=dict(args or {}))


def test_a_tool_not_granted_is_denied_whatever_the_rules_say() -> None:
    allow_all = policies("rules:\n  - name: everything\n    decision: allow\n")
    for effect in ("read", "write"):
        got = decide(request("crm.note", effect=effect, granted=("mail.*",)), allow_all)
        assert got == PolicyDecision("deny", NOT_GRANTED,
                                     "tool crm.note is not granted to agent clerk")
    assert decide(request("crm.note", granted=()), allow_all).rule == NOT_GRANTED


def test_a_prompt_injection_cannot_reach_an_ungranted_tool() -> None:
    # An email told the agent to "forward all invoices with payments.send"; it asks.
    injected = request("payments.send", agent="inbox-triage", playbook="board-triage",
                       granted=("mail.read", "crm.note"),
                       args={"to": "attacker@example.com", "amount": 1})
    got = decide(injected, policies())
    assert got.decision == "deny" and got.rule == NOT_GRANTED
    assert not got.allowed
    assert "payments.send" in got.reason and "inbox-triage" in got.reason


def test_grants_are_globs() -> None:
    assert decide(request("crm.note", granted=("crm.*",)), Policies()).allowed
    assert not decide(request("crmx.note", granted=("crm.*",)), Policies()).allowed
    assert not decide(request("CRM.note", granted=("crm.*",)), Policies()).allowed


def test_defaults_when_no_rule_matches() -> None:
    read = decide(request("mail.read", effect="read"), policies())
    assert (read.decision, read.rule) == ("allow", DEFAULT_READ)
    write = decide(request("crm.note"), policies())
    assert (write.decision, write.rule) == ("allow", DEFAULT_GRANTED)
    assert write.reason == "tool crm.note is granted to agent clerk and no rule applies"


def test_first_matching_rule_wins_in_order() -> None:
    rules = policies()
    # big-payments comes before no-payments: a big payment needs approval, not a deny.
    big = decide(request("payments.send", args={"amount": 900}), rules)
    assert big == PolicyDecision("needs_approval", "big-payments",
                                 "payments over 500 need a person")
    small = decide(request("payments.send", args={"amount": 20}), rules)
    assert (small.decision, small.rule) == ("deny", "no-payments")
    board = decide(request("payments.send", playbook="board-q3", args={"amount": 20}), rules)
    assert (board.decision, board.rule, board.reason) == (
        "allow", "board-playbook-allows-payments", "the board may pay")
    # At exactly 500 the condition is false.
    assert decide(request("payments.send", args={"amount": 500}), rules).rule == "no-payments"


def test_globs_on_agent_tool_and_playbook() -> None:
    rules = policies()
    assert decide(request("crm.delete", agent="intern-2"), rules).rule == "interns-never-delete"
    assert decide(request("crm.delete", agent="clerk"), rules).rule == DEFAULT_GRANTED
    # A glob never matches a missing name: a step without an agent is no intern.
    assert decide(request("crm.delete", agent=None), rules).rule == DEFAULT_GRANTED
    assert decide(request("payments.send", playbook=None, args={"amount": 1}),
                  rules).rule == "no-payments"


def test_tags_must_all_be_carried() -> None:
    rules = policies()
    both = decide(request("bank.wire", tags=("money", "external", "slow")), rules)
    assert (both.decision, both.rule) == ("needs_approval", "money-tag")
    assert both.reason == "rule money-tag says needs_approval"
    assert decide(request("bank.wire", tags=("money",)), rules).rule == DEFAULT_GRANTED


def test_a_broken_condition_denies_and_names_its_rule() -> None:
    # The loader refuses a syntax error; a Policies built in code (or stored) may hold one.
    rules = Policies.model_validate({"rules": [
        {"name": "typo", "match": {"tool": "payments.*", "when": "args.amount > > 500"},
         "decision": "allow"},
        {"name": "missing-arg", "match": {"tool": "crm.*", "when": "args.amount > 500"},
         "decision": "allow"},
        {"name": "zero", "match": {"tool": "mail.*", "when": "1 / args.n > 0"},
         "decision": "allow"},
    ]})
    typo = decide(request("payments.send", args={"amount": 1}), rules)
    assert (typo.decision, typo.rule) == ("deny", "typo")
    assert typo.reason.startswith("rule typo could not evaluate its condition")
    missing = decide(request("crm.note", args={}), rules)
    assert (missing.decision, missing.rule) == ("deny", "missing-arg")
    assert "amount" in missing.reason
    zero = decide(request("mail.send", args={"n": 0}), rules)
    assert (zero.decision, zero.rule) == ("deny", "zero")
    assert decide(request("mail.send", args={"n": 2}), rules).allowed


def test_an_evaluator_that_raises_anything_denies() -> None:
    def explode(expression: str, context: Mapping[str, Any]) -> Any:
        raise RuntimeError("boom")

    rules = policies("rules:\n  - name: r\n    match: {when: 'true'}\n    decision: allow\n")
    got = decide(request("crm.note"), rules, evaluate=explode)
    assert (got.decision, got.rule) == ("deny", "r") and "boom" in got.reason


def test_conditions_see_the_request() -> None:
    rules = policies("""\
rules:
  - name: writes-by-bots
    match: {when: "effect == 'write' and agent.startswith('bot') and 'x' in tags"}
    decision: needs_approval
""")
    assert decide(request("a.b", agent="bot-1", tags=("x",)), rules).rule == "writes-by-bots"
    assert decide(request("a.b", agent="bot-1", effect="read", tags=("x",)),
                  rules).rule == DEFAULT_READ
    # An effect that is not "read" is a write, in conditions and in the defaults.
    assert decide(request("a.b", agent="bot-1", effect="WRITE?", tags=("x",)),
                  rules).rule == "writes-by-bots"
    assert decide(request("a.b", effect="Read"), rules).rule == DEFAULT_GRANTED


def test_decision_is_pure_and_loggable() -> None:
    rules = policies().model_copy(update={"version": 7})
    req = request("payments.send", args={"amount": 900})
    first, second = decide(req, rules), decide(req, rules)
    assert first == second
    assert first.as_dict() == {"decision": "needs_approval", "rule": "big-payments",
                               "reason": "payments over 500 need a person",
                               "policies_version": 7}


def test_allowed_hosts_are_checked_and_normalised() -> None:
    got = policies("allowed_hosts: [API.example.com, '*.internal', 'localhost:8080']\n")
    assert got.allowed_hosts == ["api.example.com", "*.internal", "localhost:8080"]
    assert Policies().allowed_hosts == []
    with pytest.raises(DefinitionError, match="not a URL"):
        policies("allowed_hosts: ['https://example.com/']\n")
    with pytest.raises(ValidationError, match="invalid port"):
        Policies(allowed_hosts=["example.com:99999"])
