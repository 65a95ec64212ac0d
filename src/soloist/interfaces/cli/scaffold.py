"""``soloist init [--template NAME]``: copy a workspace shipped inside the package."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from soloist.errors import InputError, InvalidState

RENAMES = {"gitignore.txt": ".gitignore"}
#: The workspaces ``soloist init`` can write: name -> folder of soloist.templates.
TEMPLATES = {"example": "workspace", "freelancer": "freelancer"}


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


def write_example(directory: Path, *, force: bool = False,
                  template: str = "example") -> list[Path]:
    """Write a template's workspace; refuses an unknown template, a folder with files
    unless ``force``, and a path that is a file or cannot be written, before writing
    anything."""
    if template not in TEMPLATES:
        raise InputError(f"there is no template {template!r}; choose one of "
                         f"{', '.join(sorted(TEMPLATES))}")
    if directory.exists() and not directory.is_dir():
        raise InvalidState(f"{directory} is a file, not a folder; choose a new folder")
    try:
        if directory.exists() and any(directory.iterdir()) and not force:
            raise InvalidState(f"{directory} is not empty; choose a new folder or pass --force")
        files = _walk(resources.files("soloist.templates").joinpath(TEMPLATES[template]),
                      Path())
        written: list[Path] = []
        for rel, content in sorted(files):
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename and Path(exc.filename) != directory else ""
        raise InvalidState(f"cannot create the workspace in {directory}: {where}"
                           f"{exc.strerror or exc}; choose a folder you may write to") from None
    return written
