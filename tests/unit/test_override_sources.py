"""Whose draft an edit at a gate corrects, derived from the playbook as it is written."""

from __future__ import annotations

from typing import Any

from soloist.control.overrides import sources
from soloist.control.playbooks import Playbook
from soloist.memory.context import build, override_text


def playbook(*steps: dict[str, Any]) -> Playbook:
    return Playbook.model_validate({"name": "p", "steps": list(steps)})


DRAFT = {"id": "draft", "agent": "acquisition", "task": "write"}


def test_a_gated_tool_step_is_corrected_in_the_agent_step_it_reads() -> None:
    p = playbook(DRAFT, {"id": "send", "tool": "mail.send", "gate": True, "args": {
        "to": "{{ inputs.lead }}", "body": "{{ steps.draft.output.body }}",
        "subject": "{{ steps['draft'].output.subject }}"}})
    assert sources(p, "send") == [{"step": "draft", "agent": "acquisition"}]


def test_an_agent_steps_own_gate_has_that_step_as_its_source() -> None:
    p = playbook({**DRAFT, "gate": True})
    assert sources(p, "draft") == [{"step": "draft", "agent": "acquisition"}]


def test_steps_in_between_that_are_no_agents_are_followed_back() -> None:
    p = playbook(
        DRAFT,
        {"id": "research", "agent": "qualification", "task": "read", "needs": []},
        {"id": "shape", "python": "tasks:shape", "args": {
            "text": "{{ steps.draft.output.body }} {{ steps.research.output }}"}},
        {"id": "send", "python": "tasks:send", "gate": True,
         "args": {"mail": "{{ steps.shape.output }}", "raw": ["{{ steps.shape.output }}"]}})
    assert sources(p, "send") == [{"step": "draft", "agent": "acquisition"},
                                  {"step": "research", "agent": "qualification"}]


def test_a_step_that_reads_no_draft_has_no_sources() -> None:
    p = playbook(DRAFT, {"id": "send", "tool": "note", "gate": True,
                         "args": {"text": "{{ inputs.x }} plain"}})
    assert sources(p, "send") == []
    assert sources(p, "nosuch") == []


OVERRIDE = {"id": 7, "step": "send", "before": {"to": "a@x", "body": "Hi."},
            "after": {"to": "a@x", "body": "Dear Ada, warmly."}, "reason": "warmer"}


def test_an_override_shows_only_what_changed_and_why() -> None:
    text = override_text(OVERRIDE)
    assert text == ('A person changed an earlier draft at step send: before {"body": "Hi."}, '
                    'after {"body": "Dear Ada, warmly."}, because warmer')


def test_overrides_are_in_the_working_context_within_its_budget() -> None:
    ctx = build(instructions="Write.", task="to Ada", budget=400, overrides=[OVERRIDE])
    [item] = ctx.section("overrides")
    assert item.ref == "event:7" and "Dear Ada, warmly." in item.text
    assert "Dear Ada, warmly." in ctx.memory_text()
    assert ctx.overrides == [OVERRIDE] and ctx.tokens <= 400
    tiny = build(instructions="Write.", task="to Ada", budget=20, overrides=[OVERRIDE])
    assert tiny.section("overrides") == []
    assert tiny.left_out == [{"kind": "overrides", "ref": "event:7"}]
