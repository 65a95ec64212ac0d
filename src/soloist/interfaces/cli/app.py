"""The ``soloist`` command. Each subcommand is a thin call into :class:`Workspace`.

Imports of the engine happen inside the commands so that ``soloist --help`` stays fast.
A user's mistake (a :class:`SoloistError`) prints one sentence and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

app = typer.Typer(
    name="soloist", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Design, run and audit multi-step workflows carried out by software agents.",
)
audit_app = typer.Typer(no_args_is_help=True, help="Check the episodic log.")
app.add_typer(audit_app, name="audit")

def parse_input(text: str | None) -> dict[str, Any]:
    """``--input`` takes JSON, or ``@file`` holding JSON."""
    from soloist.errors import InputError

    if text is None:
        return {}
    source = "--input"
    if text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read input file {path}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None
    if not isinstance(value, dict):
        raise InputError(f"{source} must be a JSON object, like '{{\"customer\": \"Ada\"}}'")
    return value


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create.")],
         force: Annotated[bool, typer.Option(help="Write into a folder that has files.")]
         = False) -> None:
    """Write a working example workspace into DIRECTORY."""
    from soloist.interfaces.cli.scaffold import write_example

    written = write_example(directory, force=force)
    typer.echo(f"Created workspace {directory} ({len(written)} files). Next:\n"
               f"  cd {directory} && soloist deploy && soloist up")


@app.command()
def deploy(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Validate every file and record a new version of what changed."""
    from soloist.interfaces.cli.render import print_json

    with open_workspace(workspace) as ws:
        report = ws.deploy()
    if as_json:
        print_json(report)
        return
    for kind, name, version in report.deployed:
        typer.echo(f"deployed  {kind} {name} v{version}")
    for kind, name, version in report.unchanged:
        typer.echo(f"unchanged {kind} {name} v{version}")


@app.command()
def rollback(kind: Annotated[str, typer.Argument(help="playbook, agent or policies")],
             name: str,
             to: Annotated[int, typer.Option("--to", help="The version to deploy again.")],
             workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Deploy an older version of a definition again (as a new version)."""
    with open_workspace(workspace) as ws:
        version = ws.rollback(kind, name, to)
    typer.echo(f"{kind} {name} is now v{version} (the content of v{to})")


@app.command()
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
    out = render.table("kind", "name", "version", "deployed", "by", "note", "source")
    for r in rows:
        out.add_row(r.kind, r.name, f"v{r.version}", render.when(r.deployed_at),
                    r.deployed_by, r.note or "", r.source or "")
    render.console().print(out)


@app.command()
def run(playbook: str,
        input: Annotated[str | None, typer.Option(
            "--input", "-i", help="JSON object, or @file.json")] = None,
        wait: Annotated[bool, typer.Option(help="Wait until the run ends.")] = False,
        timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 300.0,
        priority: Annotated[int | None, typer.Option(
            help="Higher runs first (default: the playbook's).")] = None,
        workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Start a run of PLAYBOOK."""
    from soloist.interfaces.cli.render import print_json

    inputs = parse_input(input)
    with open_workspace(workspace) as ws:
        run_id = ws.start(playbook, inputs, priority=priority)
        row = ws.wait(run_id, timeout) if wait else ws.get_run(run_id)
    if as_json:
        print_json(row)
    else:
        typer.echo(f"{row.id} {row.state}" + (f": {row.error}" if row.error else ""))
    if wait and row.state != "done":
        raise typer.Exit(2)


@app.command()
def worker(concurrency: Annotated[int | None, typer.Option(
               envvar="SOLOIST_CONCURRENCY", help="Steps run at once.")] = None,
           workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Run steps until SIGTERM (finishes or releases what it holds, then exits 0)."""
    with open_workspace(workspace) as ws:
        ws.serve(concurrency=concurrency, scheduler=False)


@app.command()
def up(concurrency: Annotated[int | None, typer.Option(
           envvar="SOLOIST_CONCURRENCY", help="Steps run at once.")] = None,
       workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Run a worker and the scheduler (cron, events, gate timeouts) in one process."""
    with open_workspace(workspace) as ws:
        typer.echo(f"soloist up: workspace {ws.root}, store {ws.store.url}; Ctrl-C stops")
        ws.serve(concurrency=concurrency, scheduler=True)


@app.command()
def demo(directory: Annotated[Path | None, typer.Argument(
             help="Where to create the demo workspace (default: a new temporary folder).")]
         = None) -> None:
    """Create the example workspace and run it end to end, saying what happens."""
    from soloist.interfaces.cli.demo import run_demo

    run_demo(directory)


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


def _register_more() -> None:
    from soloist.interfaces.cli import approvals, runs
    from soloist.interfaces.cli.memory import memory_app
    from soloist.interfaces.cli.secrets import secret_app
    from soloist.interfaces.cli.snapshots import snapshot_app

    runs.register(app)
    approvals.register(app)
    app.add_typer(secret_app, name="secret")
    app.add_typer(memory_app, name="memory")
    app.add_typer(snapshot_app, name="snapshot")


def main() -> None:
    """Entry point: run the app; a user's mistake is one line on stderr and exit 1."""
    from soloist.errors import SoloistError

    _register_more()
    try:
        app(standalone_mode=False)
    except SoloistError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as exc:  # usage errors arrive here in standalone_mode=False
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("SOLOIST_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} "
                   "(set SOLOIST_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)
