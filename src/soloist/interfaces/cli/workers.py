"""``soloist workers`` and ``soloist workers drain ID``: the live workers, and asking one
to finish what it holds and exit."""

from __future__ import annotations

from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

workers_app = typer.Typer(
    invoke_without_command=True,
    help="The live workers: host, pid, version, started, last heartbeat, steps in hand, "
         "draining; 'drain ID' makes one stop claiming and exit when its hands are empty.")


@workers_app.callback()
def list_workers(ctx: typer.Context, workspace: WorkspaceOpt = DEFAULT_WS,
                 as_json: JsonOpt = False) -> None:
    """List the live worker processes."""
    if ctx.invoked_subcommand is not None:
        return
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        rows = ws.workers()
    if as_json:
        render.print_json(rows)
        return
    out = render.table("worker", "host", "pid", "version", "started", "heartbeat",
                       "in hand", "draining", ids=("worker",))
    for w in rows:
        out.add_row(w.id, w.host or "-", "-" if w.pid is None else str(w.pid),
                    w.version or "-", render.ago(w.started_at), render.ago(w.heartbeat_at),
                    str(w.steps_in_hand), "yes" if w.draining else "")
    render.console().print(out)
    if not rows:
        typer.echo("no live worker (soloist worker or soloist up starts one)", err=True)


@workers_app.command("drain")
def drain_worker(ctx: typer.Context, worker_id: Annotated[str, typer.Argument(
                     metavar="ID", help="The worker's id, or a prefix naming only one.")],
                 workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Ask a worker to claim nothing more, finish the steps in its hands and exit 0."""
    if workspace == DEFAULT_WS and ctx.parent is not None:  # soloist workers -w DIR drain
        workspace = ctx.parent.params.get("workspace") or workspace
    with open_workspace(workspace) as ws:
        worker = ws.drain_worker(worker_id)
    if as_json:
        from soloist.interfaces.cli.render import print_json

        print_json(worker)
        return
    from soloist.interfaces.cli.render import plain

    typer.echo(plain(f"worker {worker.id} drains: it claims nothing more and exits once "
                     f"its {worker.steps_in_hand} step(s) in hand are finished"))
