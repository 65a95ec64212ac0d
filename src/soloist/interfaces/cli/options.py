"""Options every subcommand shares, and the one way the CLI opens a workspace."""

from __future__ import annotations

from collections.abc import Callable
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


def serve_through_outages(path: Path, serve: Callable[[Workspace], None]) -> None:
    """Open the workspace at ``path`` and ``serve`` it (a long-running worker); a store
    that cannot be reached while the process starts is waited for, as a running worker
    waits out an outage, so a fleet restarted while its database restarts too comes up
    when the database does. Once serving, the loops ride out outages by themselves."""
    import logging
    import threading

    from soloist.errors import StoreUnavailable
    from soloist.store.outage import Outage

    folder = find_workspace(path)
    outage = Outage(logging.getLogger("soloist.interfaces.cli"), f"starting in {folder}")
    while True:
        try:
            with open_workspace(folder) as workspace:
                outage.ok()
                serve(workspace)
            return
        except StoreUnavailable as exc:
            # An event's wait, like the worker's own: a process under a shifted clock
            # (libfaketime, in the clock-skew tests) cannot time.sleep.
            threading.Event().wait(outage.failed(exc))
