"""``soloist approvals | approve | reject | retry | resolve``: the human gates."""

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
        # Every value is data, shown whole and escaped on its own line: what the person reads
        # is exactly what a decision lets through, and nothing in it can style or forge it.
        expires = (", default ", a.default_decision or "-", " at ", render.when(a.expires_at)
                   ) if a.expires_at else ()
        con.print(render.line(render.styled(a.id, "bold"), "  ", p.playbook, " run ", a.run_id,
                              " step ", a.step_id, " (", a.reason, ", ",
                              render.ago(a.created_at), *expires, ")"))
        con.print(render.line("  ", a.message))
        for i in p.intents:
            con.print(render.line("  -> ", i.tool, " ", render.text(i.args), "  key ",
                                  i.idempotency_key))
        for key in p.dispatched:  # a restore forgot it, the dispatch ledger did not
            con.print(render.line("  !! ", key, " was dispatched before a restore: approving "
                                  "replays its recorded result, it does not act again"))
        if not p.intents and p.output is not None:
            con.print(render.line("  output: ", render.text(p.output)))


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
    """Run the step again with guidance (the step reads it as 'ctx.guidance')."""
    with open_workspace(workspace) as ws:
        a = ws.retry(approval_id, guidance)
    typer.echo(f"sent {a.step_id} of run {a.run_id} back with guidance")


def resolve(
    approval_id: str,
    note: Annotated[str, typer.Option(help="What you did by hand, for the record.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """A failed compensation: you undid its effects by hand, and the run goes on."""
    with open_workspace(workspace) as ws:
        a = ws.resolve(approval_id, note)
    typer.echo(f"resolved {a.id} by hand (run {a.run_id}, step {a.step_id})")


def register(app: typer.Typer) -> None:
    app.command()(approvals)
    app.command()(approve)
    app.command()(reject)
    app.command()(retry)
    app.command()(resolve)
