"""Small workspaces for tests: a folder with soloist.toml, playbooks and a tasks module."""

from __future__ import annotations

import uuid
from pathlib import Path


def write_workspace(root: Path, playbooks: dict[str, str], tasks: str = "",
                    toml: str = "") -> Path:
    """A minimal workspace folder with the given playbook YAML texts."""
    (root / "playbooks").mkdir(parents=True, exist_ok=True)
    (root / "soloist.toml").write_text('[workspace]\nname = "test"\n' + toml)
    for name, text in playbooks.items():
        (root / "playbooks" / f"{name}.yaml").write_text(text)
    if tasks:
        module = f"tasks_{uuid.uuid4().hex[:8]}"
        (root / f"{module}.py").write_text(tasks)
        for path in (root / "playbooks").iterdir():
            path.write_text(path.read_text().replace("tasks:", f"{module}:"))
    return root
