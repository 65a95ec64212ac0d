"""The Workspace services behind the CLI's validation, on both backends: what a person
asks for that does not exist is refused by the service (so every interface refuses it),
the log's head is found without reading the log, and nothing is built before it is used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.control.playbooks import PRIORITY_MAX as MAX_PRIORITY
from soloist.control.playbooks import PRIORITY_MIN as MIN_PRIORITY
from soloist.errors import ConfigError, InputError, NotFound
from soloist.memory.facts import Cause
from soloist.workspace import Workspace

PLAYBOOK = """
name: plain
inputs: {type: object, properties: {amount: {type: number}}}
steps:
  - {id: a, tool: note, args: {text: "{{ inputs.amount }}"}}
"""


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", {"plain": PLAYBOOK})
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def test_unknown_states_runs_and_limits_are_refused(ws: Workspace) -> None:
    with pytest.raises(InputError, match="not a run state; use one of running, compensating"):
        ws.runs(state="bogus")
    with pytest.raises(NotFound, match="no run 'r-nope'"):
        ws.log(run_id="r-nope")
    with pytest.raises(NotFound, match="no run 'r-nope'"):
        ws.memory.revert_run("r-nope", Cause("person:test", "undo"))
    with pytest.raises(InputError, match="at least 1"):
        ws.runs(limit=0)
    with pytest.raises(InputError, match="days must be positive"):
        ws.metrics(0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused_by_the_services(ws: Workspace, value: float) -> None:
    with pytest.raises(InputError, match="which JSON cannot carry"):
        ws.start("plain", {"amount": value})
    with pytest.raises(InputError, match="which JSON cannot carry"):
        ws.memory.put("n", "s", "k", {"total": [value]}, Cause("person:test", "why"))
    assert ws.runs() == [] and ws.memory.get("n", "s", "k") is None


def test_priorities_are_those_both_stores_hold(ws: Workspace) -> None:
    for priority in (MAX_PRIORITY + 1, MIN_PRIORITY - 1, 2**63):
        with pytest.raises(InputError, match=r"priority .* is out of range"):
            ws.start("plain", {}, priority=priority)
    assert ws.runs() == []
    for priority in (MAX_PRIORITY, MIN_PRIORITY):
        assert ws.get_run(ws.start("plain", {}, priority=priority)).priority == priority


def test_the_log_head_is_the_newest_event(ws: Workspace) -> None:
    head = ws.log_head()
    assert head == ws.log(limit=1_000_000)[-1].seq
    for _ in range(5):
        ws.start("plain", {})
    assert ws.log_head() == ws.log(limit=1_000_000)[-1].seq > head


def test_services_are_built_on_first_use(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAYBOOK}, toml=(
        '[tools]\nmodules = ["not_importable_yet"]\n'))
    with Workspace(root) as ws:
        built = set(vars(ws))
        assert not built & {"tools", "runner", "router", "guard", "documents", "registry"}
        ws.runs()
        assert "tools" not in vars(ws)
        (root / "not_importable_yet.py").write_text("def broken(:\n")
        with pytest.raises(ConfigError, match=r"not_importable_yet.py:1: syntax error"):
            ws.tools  # noqa: B018
