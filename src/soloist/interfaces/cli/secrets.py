"""``soloist secret set | list | delete``: secrets encrypted at rest, never printed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

secret_app = typer.Typer(no_args_is_help=True, help="Secrets, referenced as secret:NAME.")


@secret_app.command("set")
def set_secret(name: Annotated[str, typer.Argument(help="The secret's name.")],
               workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Set NAME to the value read from standard input (prompted, hidden, on a terminal).

    A value must have at least 8 characters: a shorter one could not be told apart from
    ordinary text, so it could not be redacted from logs and outputs."""
    if sys.stdin.isatty():
        value = typer.prompt(f"value for {name}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    with open_workspace(workspace) as ws:
        ws.secrets.set(name, value, ws.actor(None))
    typer.echo(f"secret {name} set; reference it as secret:{name}")


@secret_app.command("delete")
def delete_secret(name: Annotated[str, typer.Argument(help="The secret's name.")],
                  workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Forget NAME (also when its value cannot be read, e.g. after losing the key file)."""
    with open_workspace(workspace) as ws:
        ws.secrets.delete(name, ws.actor(None))
    typer.echo(f"secret {name} deleted")


@secret_app.command("list")
def list_secrets(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """The secrets' names and when they were set (never their values)."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        rows = ws.secrets.list()
    if as_json:
        render.print_json([{"name": r.name, "updated_at": r.updated_at,
                            "updated_by": r.updated_by} for r in rows])
        return
    out = render.table("name", "set", "by", ids=("name",))
    for r in rows:
        out.add_row(r.name, render.when(r.updated_at), r.updated_by)
    render.console().print(out)
