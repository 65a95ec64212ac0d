"""Tables of soloist.toml that reach the services a Workspace builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.control.breakers import BreakerPolicy
from soloist.errors import ConfigError
from soloist.workspace import Workspace

PLAYBOOK = """
name: one
steps:
  - {id: a, python: "tasks:noop"}
"""
TASKS = "def noop(ctx):\n    return None\n"


def test_breaker_and_search_settings_reach_the_guard_and_memory(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS, toml=(
        '[breakers]\nfailure_threshold = 2\ncooldown = "1m"\n'
        '[breakers.ollama]\ncooldown = "5s"\n'
        '[memory.search]\nvector_weight = 3.0\n'))
    with Workspace(root) as ws:
        assert ws.guard.breakers.policy("openai") == BreakerPolicy(2, 60.0)
        assert ws.guard.breakers.policy("ollama") == BreakerPolicy(2, 5.0)
        assert [r.vector_weight for r in ws.documents.recipes] == [3.0, 3.0]
        assert ws.documents.status()["ranking"] == "vector_weight=3.0"


@pytest.mark.parametrize(("toml", "message"), [
    ('[breakers]\ncooldown = "later"\n', "[breakers] cooldown: 'later' is not a duration"),
    ("[memory.search]\nvectors = 2\n", "[memory.search] vectors: unknown setting"),
])
def test_a_bad_table_stops_the_workspace_with_one_sentence(tmp_path: Path, toml: str,
                                                           message: str) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS, toml=toml)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Workspace(root)
