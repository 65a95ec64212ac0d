"""``soloist approvals | approve | reject | retry``: the human gates."""

from __future__ import annotations

from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace


def approvals(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """What waits for a person, with the exact intents a decision lets through."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        pending = ws.approvals()
    if as_json:
        render.print_json(pending)
        return
    if not pending:
        typer.echo("nothing waits for approval")
        return
    con = render.console()
    for p in pending:
        a = p.approval
        expires = (
            f", default {a.default_decision} at {render.when(a.expires_at)}" if a.expires_at else ""
        )
        con.print(
            f"[bold]{a.id}[/]  {p.playbook} run {a.run_id} step {a.step_id} "
            f"({a.reason}, {render.ago(a.created_at)}{expires})"
        )
        con.print(f"  {a.message}")
        for i in p.intents:
            con.print(f"  -> {i.tool} {render.short(i.args, 90)}  key {i.idempotency_key}")
        for key in p.dispatched:  # a restore forgot it, the dispatch ledger did not
            con.print(f"  !! {key} was dispatched before a restore: approving replays its "
                      "recorded result, it does not act again", markup=False)
        if not p.intents and p.output is not None:
            con.print(f"  output: {render.short(p.output, 90)}")


def approve(
    approval_id: str,
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """Approve: the step's intents are dispatched and the run goes on."""
    with open_workspace(workspace) as ws:
        a = ws.approve(approval_id, note)
    typer.echo(f"approved {a.id} (run {a.run_id}, step {a.step_id})")


def reject(
    approval_id: str,
    reason: Annotated[str, typer.Option(help="Why, for the record.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """Reject: the step fails and what the run dispatched is compensated."""
    with open_workspace(workspace) as ws:
        a = ws.reject(approval_id, reason)
    typer.echo(f"rejected {a.id} (run {a.run_id}, step {a.step_id})")


def retry(
    approval_id: str,
    guidance: Annotated[str, typer.Option(help="What to do differently.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """Run the step again with guidance (it sees ``ctx.guidance``)."""
    with open_workspace(workspace) as ws:
        a = ws.retry(approval_id, guidance)
    typer.echo(f"sent {a.step_id} of run {a.run_id} back with guidance")


def register(app: typer.Typer) -> None:
    app.command()(approvals)
    app.command()(approve)
    app.command()(reject)
    app.command()(retry)
