"""``soloist snapshot create | list | restore``: consistent copies of the whole store."""

from __future__ import annotations

from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

snapshot_app = typer.Typer(no_args_is_help=True, help="Copies of the whole store.")


@snapshot_app.command("create")
def create(name: Annotated[str | None, typer.Option(help="Default: the time.")] = None,
           workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Copy the whole store (safe while workers run)."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        snap = ws.snapshots.create(ws.actor(None), name)
    if as_json:
        render.print_json(snap)
    else:
        typer.echo(render.plain(f"snapshot {snap.name}: {snap.path} ({snap.size_bytes} bytes)"))


@snapshot_app.command("list")
def list_snapshots(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """The snapshots of this workspace, oldest first."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        snaps = ws.snapshots.list()
    if as_json:
        render.print_json(snaps)
        return
    out = render.table("name", "taken", "by", "size", "store", ids=("name",))
    for s in snaps:
        out.add_row(s.name, render.when(s.created_at), s.created_by, f"{s.size_bytes}", s.store)
    render.console().print(out)


@snapshot_app.command("restore")
def restore(name: str,
            force: Annotated[bool, typer.Option(help="Even while workers hold leases.")]
            = False,
            workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Bring the whole store back to a snapshot."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        snap = ws.snapshots.restore(name, ws.actor(None), force=force)
    typer.echo(f"restored snapshot {render.plain(snap.name)}")
