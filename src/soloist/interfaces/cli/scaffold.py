"""``soloist init``: copy the example workspace shipped inside the package."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from soloist.errors import InvalidState

RENAMES = {"gitignore.txt": ".gitignore"}


def _walk(node: Traversable, rel: Path) -> list[tuple[Path, bytes]]:
    out: list[tuple[Path, bytes]] = []
    for child in node.iterdir():
        if child.name == "__pycache__":
            continue
        target = rel / RENAMES.get(child.name, child.name)
        if child.is_dir():
            out.extend(_walk(child, target))
        else:
            out.append((target, child.read_bytes()))
    return out


def write_example(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the example workspace; refuses a folder with files unless ``force``."""
    if directory.exists() and any(directory.iterdir()) and not force:
        raise InvalidState(f"{directory} is not empty; choose a new folder or pass --force")
    files = _walk(resources.files("soloist.templates").joinpath("workspace"), Path())
    written: list[Path] = []
    for rel, content in sorted(files):
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
