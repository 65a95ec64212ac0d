"""Options every subcommand shares, and the one way the CLI opens a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from soloist.workspace import Workspace

WorkspaceOpt = Annotated[Path, typer.Option(
    "--workspace", "-w", envvar="SOLOIST_WORKSPACE", show_envvar=True,
    help="The workspace folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_WS = Path(".")


def find_workspace(path: Path) -> Path:
    """The folder holding soloist.toml: ``path`` itself or, as git finds its repository,
    the nearest folder above it; ``path`` when there is none (the error then names it)."""
    from soloist.config import CONFIG_FILE

    start = path.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return path


def open_workspace(path: Path) -> Workspace:
    from soloist.workspace import Workspace

    return Workspace(find_workspace(path))
