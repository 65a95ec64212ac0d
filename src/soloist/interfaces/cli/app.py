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


def _register_more() -> None:
    from soloist.interfaces.cli import approvals, definitions, runs
    from soloist.interfaces.cli.audit import audit_app
    from soloist.interfaces.cli.memory import memory_app
    from soloist.interfaces.cli.secrets import secret_app
    from soloist.interfaces.cli.snapshots import snapshot_app

    definitions.register(app)
    runs.register(app)
    approvals.register(app)
    app.add_typer(secret_app, name="secret")
    app.add_typer(memory_app, name="memory")
    app.add_typer(snapshot_app, name="snapshot")
    app.add_typer(audit_app, name="audit")


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
