"""Whose draft a person's edit at a gate corrects: the agent steps behind the gated step.

An agent step ``draft`` writes an email; a later tool step ``send`` stages it from
``{{ steps.draft.output.body }}`` behind a gate; the person edits the email at ``send``.
The edit is a lesson for ``draft`` (and its agent), not for ``send``: the sources of an
override are the agent steps whose output the gated step's templates read, followed back
through the steps in between that are not agents. An edit at an agent step's own gate has
that step as its source. Derived from the playbook as it is written, never guessed from
the values (README: "Overrides").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from soloist.control import templating
from soloist.control.playbooks import Playbook, Step


def sources(playbook: Playbook, step_id: str) -> list[dict[str, str]]:
    """``[{"step": ..., "agent": ...}]`` for the agent steps an edit at ``step_id`` corrects,
    in the order the gated step reads them."""
    found: list[dict[str, str]] = []
    seen: set[str] = set()
    pending = [step_id]
    while pending:
        current = pending.pop(0)
        if current in seen or current not in playbook.steps_by_id:
            continue
        seen.add(current)
        step = playbook.step(current)
        if step.agent is not None:
            found.append({"step": step.id, "agent": step.agent})
            continue  # what the agent read is its own input, not a draft it was given
        pending.extend(_read_steps(step))
    return found


def _read_steps(step: Step) -> Iterator[str]:
    """The step ids that the step's arguments read (what a person edits comes from them)."""
    for text in _strings(step.args):
        if "{" not in text:
            continue
        try:
            yield from templating.reads(text).steps
        except ValueError:  # refused at deploy; nothing to follow
            continue


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
