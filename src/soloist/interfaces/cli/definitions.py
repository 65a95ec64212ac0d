"""``soloist deploy | rollback | versions``: the registry of definitions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace


def deploy(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Validate every file and record a new version of what changed."""
    from soloist.errors import DefinitionError
    from soloist.interfaces.cli.render import plain, print_json

    with open_workspace(workspace) as ws:
        try:
            report = ws.deploy()
        except DefinitionError as exc:
            # Every problem, one line each, so that one deploy shows all there is to fix.
            for problem in exc.problems:
                typer.echo(f"error: {plain(problem)}", err=True)
            sys.exit(1)
    if as_json:
        print_json(report)
        return
    for kind, name, version in report.deployed:
        typer.echo(f"deployed  {kind} {name} v{version}")
    for kind, name, version in report.unchanged:
        typer.echo(f"unchanged {kind} {name} v{version}")


def rollback(kind: Annotated[str, typer.Argument(help="playbook, agent or policies")],
             name: str,
             to: Annotated[int, typer.Option("--to", help="The version to deploy again.")],
             write: Annotated[bool, typer.Option(
                 "--write", help="Also write that version to its file, so that the next "
                                 "deploy keeps it.")] = False,
             workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Deploy an older version of a definition again (as a new version)."""
    from soloist.interfaces.cli.render import plain, print_json

    with open_workspace(workspace) as ws:
        report = ws.rollback(kind, name, to, write=write)
    if as_json:
        print_json(report)
        return
    now = "is now" if report.deployed else "already is"
    typer.echo(f"{kind} {name} {now} v{report.version} (the content of v{to})")
    if report.written:
        typer.echo(f"wrote v{to} to {plain(report.source)}")
    if report.warning is not None:
        typer.echo(f"warning: {plain(report.warning)}", err=True)


def versions(kind: Annotated[str | None, typer.Argument(
                 help="playbook, agent or policies")] = None,
             name: Annotated[str | None, typer.Argument(help="Its name.")] = None,
             workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """What is deployed; with KIND NAME, every version of it (for rollback)."""
    from soloist.errors import InputError
    from soloist.interfaces.cli import render

    if kind is not None and name is None:
        raise InputError("give both KIND and NAME, e.g. `soloist versions playbook invoice`")
    with open_workspace(workspace) as ws:
        rows = ws.definitions() if kind is None or name is None else ws.history(kind, name)
    if as_json:
        render.print_json([{k: v for k, v in render.to_jsonable(r).items() if k != "body"}
                           for r in rows])
        return
    out = render.table("kind", "name", "version", "deployed", "by", "note", "source",
                       ids=("name",))
    for r in rows:
        out.add_row(r.kind, r.name, f"v{r.version}", render.when(r.deployed_at),
                    r.deployed_by, r.note or "", r.source or "")
    render.console().print(out)


def register(app: typer.Typer) -> None:
    app.command()(deploy)
    app.command()(rollback)
    app.command()(versions)
