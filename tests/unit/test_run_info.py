"""What a claimed step knows of its run: a frozen value, and what templates see of it."""

from __future__ import annotations

import dataclasses

import pytest

from soloist.execution.steps import RunInfo


def test_templates_see_the_run_and_not_the_workers_bookkeeping() -> None:
    info = RunInfo("r-1", "invoice", 3, 2, {"agents": {"writer": 4}}, refused="gone",
                   original_output={"id": 9}, attempts=1)
    assert info.template() == {"id": "r-1", "playbook": "invoice", "version": 3,
                               "attempt": 2, "pins": {"agents": {"writer": 4}}}


def test_the_agent_version_a_run_pinned() -> None:
    info = RunInfo("r-1", "p", 1, 1, {"agents": {"writer": 4}})
    assert info.agent_version("writer") == 4
    assert info.agent_version("critic") is None
    assert RunInfo("r-1", "p", 1, 1).agent_version("writer") is None


def test_it_cannot_change_once_claimed() -> None:
    info = RunInfo("r-1", "p", 1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.attempts = 5  # type: ignore[misc]
