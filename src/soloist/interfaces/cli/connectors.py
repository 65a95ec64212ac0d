"""``soloist connectors [test NAME | sync NAME]``: the connectors of soloist.toml, their
health, limits, cursors and backlogs as every worker shares them; a real round trip with
one; a poll now.

Thin: each command is one call to :class:`~soloist.workspace.Workspace`
(``connector_status``, ``test_connector``, ``sync_connector``). A failed round trip is the
user's configuration (a wrong password, a host that does not answer): its one sentence and
exit code 1, never a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

if TYPE_CHECKING:
    from soloist.integrations.ingest import PollReport
    from soloist.integrations.registry import ConnectorStatus

connectors_app = typer.Typer(
    invoke_without_command=True,
    help="Connectors (email, calendar, billing, git, webhooks). Without a command: one "
         "row per connector with its health (ok, failing, open, half_open), its shared "
         "rate limit (rate/s, burst, tokens now), calls in flight of its cap, and each "
         "source's cursor and backlog (waiting/limit).")

Name = Annotated[str, typer.Argument(help="The connector's name ([connectors.NAME]).")]
#: characters of a cursor shown in the table (an IMAP cursor, a sync token can be long)
CURSOR_WIDTH = 24


@connectors_app.callback()
def list_connectors(ctx: typer.Context, workspace: WorkspaceOpt = DEFAULT_WS,
                    as_json: JsonOpt = False) -> None:
    """List the connectors, as every worker shares them through the store."""
    if ctx.invoked_subcommand is not None:
        return
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        rows = ws.connector_status()
    if as_json:
        render.print_json([row.as_dict() for row in rows])
        return
    if not rows:
        typer.echo("no connectors: add a [connectors.NAME] table to soloist.toml")
        return
    out = render.table("name", "kind", "health", "rate limit", "in flight", "cursor",
                       "backlog", ids=("name",))
    for row in rows:
        out.add_row(row.name, row.kind, _health(row), _bucket(row), _in_flight(row),
                    _cursors(row), _backlog(row))
    render.console().print(out)


@connectors_app.command("test")
def test_connector(name: Name, workspace: WorkspaceOpt = DEFAULT_WS,
                   as_json: JsonOpt = False) -> None:
    """Make one real round trip with NAME's server.

    Says what was checked, or in one sentence what is wrong (exit 1)."""
    from soloist.errors import SoloistError, describe
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        if not as_json:
            typer.echo(render.plain(f"{name}: {ws.test_connector(name)}"))
            return
        try:
            message = ws.test_connector(name)
        except SoloistError as exc:
            render.print_json({"name": name, "ok": False, "error": describe(exc)})
            raise typer.Exit(1) from None
    render.print_json({"name": name, "ok": True, "message": message})


@connectors_app.command("sync")
def sync_connector(name: Name, workspace: WorkspaceOpt = DEFAULT_WS,
                   as_json: JsonOpt = False) -> None:
    """Poll every source of NAME now, into its backlog.

    What the workers' poller does every poll_interval; the scheduler then publishes the
    backlog on the event bus."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        reports = ws.sync_connector(name)
    if as_json:
        render.print_json(reports)
    elif not reports:
        typer.echo(render.plain(f"{name} has no source to poll"))
    else:
        for report in reports:
            typer.echo(render.plain(_report(report)))
    if any(report.error for report in reports):
        raise typer.Exit(1)


def _health(row: ConnectorStatus) -> Any:
    from soloist.interfaces.cli import render

    style = {"ok": "green", "failing": "yellow", "open": "red", "half_open": "yellow"}
    shown = row.health if not row.failures else f"{row.health} ({row.failures} failed)"
    return render.styled(shown, style.get(row.health, ""))


def _bucket(row: ConnectorStatus) -> str:
    if row.rate is None:
        return "-"
    tokens = "full" if row.tokens is None else f"{row.tokens:.1f} tokens"
    return f"{row.rate:g}/s, burst {row.burst}, {tokens}"


def _in_flight(row: ConnectorStatus) -> str:
    if row.concurrency is None:
        return str(row.in_flight) if row.in_flight else "-"
    return f"{row.in_flight}/{row.concurrency}"


def _cursors(row: ConnectorStatus) -> str:
    from soloist.interfaces.cli import render

    if not row.cursors:
        return "-"
    return "\n".join(f"{source}: {render.short(value, CURSOR_WIDTH)}"
                     for source, value in sorted(row.cursors.items()))


def _backlog(row: ConnectorStatus) -> str:
    if not row.backlog:
        return f"0/{row.backlog_limit}"
    return "\n".join(f"{source}: {waiting}/{row.backlog_limit}"
                     for source, waiting in sorted(row.backlog.items()))


def _report(report: PollReport) -> str:
    if report.error:
        return f"{report.source}: failed: {report.error}"
    if report.paused:
        return f"{report.source}: paused, its backlog is full (nothing read)"
    line = f"{report.source}: {report.accepted} new, {report.duplicates} already received"
    return line + ("; more waiting" if report.more else "")
