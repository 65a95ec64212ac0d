"""Small workspaces for tests: a folder with soloist.toml, playbooks and a tasks module."""

from __future__ import annotations

from pathlib import Path


def write_workspace(root: Path, playbooks: dict[str, str], tasks: str = "",
                    toml: str = "") -> Path:
    """A minimal workspace folder with the given playbook YAML texts and ``tasks.py``
    (each workspace imports its own, so every test can name it ``tasks``)."""
    (root / "playbooks").mkdir(parents=True, exist_ok=True)
    (root / "soloist.toml").write_text('[workspace]\nname = "test"\n' + toml)
    for name, text in playbooks.items():
        (root / "playbooks" / f"{name}.yaml").write_text(text)
    if tasks:
        (root / "tasks.py").write_text(tasks)
    return root


#: A playbook that a cron trigger starts every minute, its fire time as its input.
CRON_EACH_MINUTE = """
name: tick
triggers:
  - cron: "* * * * *"
    inputs: {at: "{{ fire_time }}"}
inputs: {type: object, properties: {at: {type: number}}}
steps:
  - {id: a, tool: note, args: {text: "tick"}}
"""


#: ``tasks:hold``: a step that stays in its worker's hands until the test opens its gate
#: (creates the file the input ``gate`` names), for a test that looks at held steps.
HOLD_TASKS = """
import os, time

def hold(ctx, gate):
    give_up = time.monotonic() + 120
    while not os.path.exists(gate) and time.monotonic() < give_up:
        time.sleep(0.01)
    return {"step": ctx.step_id}
"""
