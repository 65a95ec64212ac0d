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
            force: Annotated[bool, typer.Option(
                help="Even while worker or scheduler processes run, or hold leases.")]
            = False,
            workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Bring the whole store back to a snapshot, and say what that forgets."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        report = ws.snapshots.restore(name, ws.actor(None), force=force)
    if as_json:
        render.print_json(report)
        return
    gone = report.forgotten
    typer.echo(f"restored snapshot {render.plain(report.snapshot.name)} "
               f"(taken {render.when(report.snapshot.created_at)})")
    if report.alive:
        typer.echo(f"forced while {len(report.alive)} process(es) ran: "
                   + ", ".join(str(p["id"]) for p in report.alive), err=True)
    if not gone:
        typer.echo("nothing that happened after the snapshot was forgotten")
        return
    typer.echo("forgotten (happened after the snapshot; no longer in the store):")
    lines = {
        "intents": ("intents dispatched (kept in the dispatch ledger: approving them again "
                    "replays the result, never acts twice)",
                    [f"{i['key']} {i['tool'] or ''} {i['status']}" for i in gone.intents]),
        "runs_started": ("runs started", [f"{r['run']} {r['playbook']} ({r['state']})"
                                          for r in gone.runs_started]),
        "runs_finished": ("runs finished (back to where they were)",
                          [f"{r['run']} {r['playbook']} ({r['state']})"
                           for r in gone.runs_finished]),
        "facts": ("facts written", [f"{f['namespace']}/{f['subject']}/{f['key']} "
                                    f"v{f['version']} {f['op']} by {f['actor']}"
                                    for f in gone.facts]),
        "documents": ("documents written", [f"{d['namespace']}/{d['key']} v{d['version']} "
                                            f"by {d['actor']}" for d in gone.documents]),
    }
    for key, (title, items) in lines.items():
        count = gone.counts.get(key, 0)
        if not count:
            continue
        typer.echo(f"  {title}: {count}")
        for item in items:
            typer.echo(f"    {render.plain(item)}")
        if count > len(items):
            typer.echo(f"    ... and {count - len(items)} more (`soloist log` has the "
                       "restore's event with the first ones)")

