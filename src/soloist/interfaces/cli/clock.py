"""``soloist clock [advance DURATION]``: the workspace's clock, moved in a rehearsal."""

from __future__ import annotations

from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

clock_app = typer.Typer(help="The clock playbooks' waits and cron triggers read; a "
                             "rehearsal workspace ([workspace] test_clock) may move it.")


def _show(now: float, offset: float, adjustable: bool, as_json: bool) -> None:
    import datetime as dt

    if as_json:
        from soloist.interfaces.cli.render import print_json

        print_json({"now": now, "offset_seconds": offset, "adjustable": adjustable})
        return
    shown = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    ahead = f", {offset / 3600:g} h ahead of the real clock" if offset else ""
    kind = "a rehearsal's clock" if adjustable else "the real clock"
    typer.echo(f"{shown} ({kind}{ahead})")


@clock_app.callback(invoke_without_command=True)
def show(ctx: typer.Context, workspace: WorkspaceOpt = DEFAULT_WS,
         as_json: JsonOpt = False) -> None:
    """What time it is for this workspace's playbooks."""
    if ctx.invoked_subcommand is not None:
        return
    with open_workspace(workspace) as ws:
        reading = ws.clock.read()
    _show(reading.now, reading.offset, reading.adjustable, as_json)


@clock_app.command("advance")
def advance(duration: Annotated[str, typer.Argument(help="How far: 90m, 3d...")],
            workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Move a rehearsal's clock forward: the waits and cron triggers that fall due fire."""
    from soloist.config.durations import parse_duration
    from soloist.errors import InputError

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    with open_workspace(workspace) as ws:
        reading = ws.clock.advance(seconds, ws.actor(None))
    _show(reading.now, reading.offset, reading.adjustable, as_json)
