"""``soloist token create | list | revoke``: bearer tokens for the API and MCP."""

from __future__ import annotations

from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

token_app = typer.Typer(no_args_is_help=True,
                        help="Bearer tokens for the HTTP API and MCP (scopes: read, run, "
                             "approve, admin).")


@token_app.command("create")
def create_token(
        name: Annotated[str, typer.Argument(help="The token's name: the actor its calls "
                                                 "are logged as (token:NAME).")],
        scope: Annotated[list[str], typer.Option(
            "--scope", help="read, run, approve or admin; repeat for several.")],
        workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Make a token and print it, once: only its hash is kept."""
    with open_workspace(workspace) as ws:
        issued = ws.access.create_token(name, scope, ws.actor(None))
    if as_json:
        from soloist.interfaces.cli.render import print_json

        print_json({"name": issued.name, "scopes": list(issued.scopes),
                    "token": issued.secret})
        return
    typer.echo(issued.secret)
    typer.echo(f"token {issued.name} ({', '.join(issued.scopes)}): shown once, keep it "
               "now; send it as 'Authorization: Bearer <token>'", err=True)


@token_app.command("list")
def list_tokens(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Every token: name, scopes, when made and by whom, last used, revoked (never the
    token itself)."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        rows = ws.access.tokens()
    if as_json:
        render.print_json([{"name": r.name, "scopes": list(r.scopes),
                            "created_at": r.created_at, "created_by": r.created_by,
                            "last_used_at": r.last_used_at, "revoked_at": r.revoked_at}
                           for r in rows])
        return
    out = render.table("name", "scopes", "made", "by", "last used", "revoked", ids=("name",))
    for r in rows:
        out.add_row(r.name, ", ".join(r.scopes), render.when(r.created_at), r.created_by,
                    render.when(r.last_used_at) if r.last_used_at else "-",
                    render.when(r.revoked_at) if r.revoked_at else "-")
    render.console().print(out)


@token_app.command("revoke")
def revoke_token(name: Annotated[str, typer.Argument(help="The token's name.")],
                 workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Revoke the live token NAME: every request with it is refused from now on."""
    with open_workspace(workspace) as ws:
        ws.access.revoke_token(name, ws.actor(None))
    typer.echo(f"token {name} revoked")
