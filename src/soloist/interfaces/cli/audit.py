"""``soloist audit``: checking the episodic log."""

from __future__ import annotations

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

audit_app = typer.Typer(no_args_is_help=True, help="Check the episodic log.")


@audit_app.command("verify")
def audit_verify(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Recompute the hash chain of the episodic log; report the first broken link."""
    from soloist.interfaces.cli.render import print_json

    with open_workspace(workspace) as ws:
        report = ws.verify()
    if as_json:
        print_json(report)
    elif report.ok:
        typer.echo(f"ok: {report.checked} events, chain intact")
    else:
        typer.echo(f"BROKEN at event {report.broken_at}: {report.problem} "
                   f"({report.checked} events before it are intact)")
    if not report.ok:
        raise typer.Exit(1)
