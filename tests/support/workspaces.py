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
