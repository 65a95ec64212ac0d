"""The ``soloist`` command. Each subcommand is a thin call into :class:`Workspace`.

Imports of the engine happen inside the commands so that ``soloist --help`` stays fast.
A user's mistake (a :class:`SoloistError`) prints one sentence and exits 1; the exit codes
are :data:`EXIT_CODES`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soloist.interfaces.cli.options import (
    DEFAULT_WS,
    JsonOpt,
    WorkspaceOpt,
    open_workspace,
    serve_through_outages,
)

if TYPE_CHECKING:
    from soloist.workspace import Workspace

# One meaning per code, for scripts; shown at the end of `soloist --help`.
EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_FAILED, EXIT_WAITING, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_INTERNAL = 70
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_USER: "a mistake in what was asked (one sentence on stderr), or a check that failed "
               "(audit verify)",
    EXIT_USAGE: "a usage error (unknown command or option, missing argument)",
    EXIT_FAILED: "run --wait: the run failed or was cancelled",
    EXIT_WAITING: "run --wait: the run waits for a person (the approval is named)",
    EXIT_TIMEOUT: "run --wait: the run is still running when --timeout runs out",
    EXIT_INTERNAL: "an internal error (a bug: set SOLOIST_DEBUG=1 for the traceback)",
}
EPILOG = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items())

app = typer.Typer(
    name="soloist", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Design, run and audit multi-step workflows carried out by software agents.",
    epilog=EPILOG,
)


def _plain_flags() -> None:
    """Typer shows ``<bool>`` beside on/off flags (``--json <bool>``) as if they took a
    value; a flag takes none, so its help shows none."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_soloist_plain_flags", False):
        return  # another Typer: its help is its own

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._soloist_plain_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_plain_flags()


def _plain_coercion() -> None:
    from soloist.interfaces.cli import coercion

    coercion.install()


_plain_coercion()


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"soloist {version('soloist')}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Design, run and audit multi-step workflows carried out by software agents."""


def parse_input(text: str | None) -> dict[str, Any]:
    """``--input`` takes JSON, or ``@file`` holding JSON (UTF-8, at most 1 MiB)."""
    from soloist import jsonvalues
    from soloist.errors import InputError

    if text is None:
        return {}
    source = "--input"
    if text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            with path.open("rb") as stream:
                text = jsonvalues.read_limited(stream, source)
        except OSError as exc:
            raise InputError(f"cannot read input file {path}: {exc.strerror}") from None
    try:
        value = jsonvalues.loads(text, source)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None
    if not isinstance(value, dict):
        raise InputError(f"{source} must be a JSON object, like '{{\"customer\": \"Ada\"}}'")
    return value


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create.")],
         force: Annotated[bool, typer.Option(help="Write into a folder that has files.")]
         = False,
         template: Annotated[str, typer.Option(
             help="example (a small company's invoices) or freelancer (win clients and "
                  "deliver projects: email, calendar, billing, git).")] = "example") -> None:
    """Write a working workspace into DIRECTORY."""
    from soloist.interfaces.cli.scaffold import write_example

    written = write_example(directory, force=force, template=template)
    typer.echo(f"Created workspace {directory} ({len(written)} files). Next:")
    if template == "freelancer":
        typer.echo("  soloist demo            (rehearse it on local servers first)\n"
                   f"  cd {directory}, edit memory/ and soloist.toml (docs/freelancer.md), "
                   "then:\n"
                   "  soloist secret set MAIL_PASSWORD (and CALDAV_PASSWORD, STRIPE_KEY)\n"
                   "  soloist deploy && soloist up")
        return
    typer.echo(f"  cd {directory} && soloist deploy && soloist up")


@app.command()
def run(playbook: str,
        input: Annotated[str | None, typer.Option(
            "--input", "-i", help="JSON object, or @file.json")] = None,
        wait: Annotated[bool, typer.Option(
            help="Wait until the run ends (exit 0 done, 3 failed or cancelled) or waits "
                 "for a person (exit 4, naming the approval); 5 if --timeout runs out.")]
        = False,
        timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 300.0,
        priority: Annotated[int | None, typer.Option(
            help="Higher runs first (default: the playbook's).")] = None,
        each: Annotated[Path | None, typer.Option(
            "--each", help="Start a run per row of a CSV file (its header names the "
                           "inputs) or a JSON Lines file: all, or none if a row is bad.")]
        = None,
        workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Start a run of PLAYBOOK."""
    from soloist.errors import InvalidState
    from soloist.interfaces.cli.render import print_json

    if each is not None:
        _run_each(playbook, each, input, wait, workspace, as_json)
        return
    inputs = parse_input(input)
    with open_workspace(workspace) as ws:
        run_id = ws.start(playbook, inputs, priority=priority)
        try:
            row = ws.wait(run_id, timeout, until_waiting=True) if wait else ws.get_run(run_id)
        except InvalidState as exc:  # the wait ran out; the run goes on
            typer.echo(f"error: {_shown(exc)}", err=True)
            raise typer.Exit(EXIT_TIMEOUT) from None
        waiting = ws.approvals(run_id=run_id) if wait and row.state == "running" else []
    if as_json:
        from soloist.interfaces.cli.render import to_jsonable

        print_json({**to_jsonable(row), "waiting_for": [p.approval.id for p in waiting]}
                   if wait else row)
    else:
        typer.echo(f"{row.id} {row.state}" + (f": {_shown(row.error)}" if row.error else ""))
        for p in waiting:
            a = p.approval
            typer.echo(f"waiting for a person at step {a.step_id}: approval {a.id}\n"
                       f"  approve: soloist approve {a.id}\n"
                       f"  reject:  soloist reject {a.id} --reason \"...\"")
    if not wait:
        return
    if waiting:
        raise typer.Exit(EXIT_WAITING)
    if row.state != "done":
        raise typer.Exit(EXIT_FAILED)


def _run_each(playbook: str, path: Path, inputs: str | None, wait: bool, workspace: Path,
              as_json: bool) -> None:
    from soloist.errors import InputError
    from soloist.interfaces.cli.rows import read_rows

    if inputs is not None or wait:
        raise InputError("--each starts a run per row of its file: give the inputs there, "
                         "not with --input, and look at the runs with `soloist runs`")
    with open_workspace(workspace) as ws:
        rows = read_rows(path, ws.registry.latest_playbook(playbook).inputs)
        ids = ws.start_many(playbook, rows)
    if as_json:
        from soloist.interfaces.cli.render import print_json

        print_json({"started": ids})
        return
    typer.echo(f"started {len(ids)} runs of {playbook} from {path}:")
    for (where, _), run_id in zip(rows, ids, strict=True):
        typer.echo(f"  {run_id}  ({where})")


def _log_to_stderr() -> None:
    """A long-running process's log (an outage and its end, a skewed clock) goes to
    stderr with the time it happened; warnings and worse only."""
    import logging

    logging.basicConfig(format="%(asctime)s soloist %(levelname)s %(message)s",
                        level=logging.WARNING)


@app.command()
def worker(concurrency: Annotated[int | None, typer.Option(
               envvar="SOLOIST_CONCURRENCY", help="Steps run at once.")] = None,
           workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Run steps until SIGTERM (finishes or releases what it holds, then exits 0)."""
    from soloist.interfaces.cli import render

    _log_to_stderr()

    def serve(ws: Workspace) -> None:
        # On stderr, so that a supervisor (or a test) knows when SIGTERM stops it cleanly.
        ws.serve(concurrency=concurrency, scheduler=False, on_ready=lambda owner: typer.echo(
            render.plain(f"soloist worker {owner}: ready, store {ws.store.url}; SIGTERM "
                         "stops"), err=True))

    serve_through_outages(workspace, serve)


@app.command()
def up(concurrency: Annotated[int | None, typer.Option(
           envvar="SOLOIST_CONCURRENCY", help="Steps run at once.")] = None,
       quiet: Annotated[bool, typer.Option(
           "--quiet", "-q", help="Print only the banner, not a line per run and gate.")]
       = False,
       web: Annotated[bool, typer.Option(
           "--web/--no-web", help="Serve the dashboard, the HTTP API and MCP.")] = True,
       host: Annotated[str | None, typer.Option(
           envvar="SOLOIST_HOST", help="Address to serve on (default: [api] host, "
                                       "127.0.0.1).")] = None,
       port: Annotated[int | None, typer.Option(
           envvar="SOLOIST_PORT", help="Port to serve on (default: [api] port, 8420; 0: "
                                       "any free port).")] = None,
       workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Run a worker, the scheduler (cron, events, gate timeouts) and the dashboard with the
    HTTP API in one process, printing a line as each run starts, waits for a person,
    finishes or fails, and a one-time link that signs you in to the dashboard."""
    from contextlib import nullcontext

    from soloist.interfaces.cli.progress import Narrator

    _log_to_stderr()

    def serve(ws: Workspace) -> None:
        ws.tools  # noqa: B018 -- a broken tool module is said before the banner
        services = []
        link = server = None
        if web:
            from soloist.interfaces.api.app import create_app
            from soloist.interfaces.api.server import WebServer, bind

            settings = ws.settings.api
            server = WebServer(create_app(ws), bind(host or settings.host,
                                                    settings.port if port is None else port))
            services.append(server)
            where, bound = server.address
            base = f"http://{f'[{where}]' if ':' in where else where}:{bound}"
            link = f"{base}/login?token={ws.access.login_link(ws.actor(None)).secret}"
        # What happens from the banner on is told (the narrator starts at the log's head).
        narrator = nullcontext() if quiet else Narrator(ws, typer.echo)
        typer.echo(f"soloist up: workspace {ws.root}, store {ws.store.url}; Ctrl-C stops")
        if link is not None:
            typer.echo(f"dashboard and API at {base} (API docs: {base}/api/v1/docs)")
            typer.echo(f"sign in (this link works once, for a day): {link}")
        try:
            with narrator:
                ws.serve(concurrency=concurrency, scheduler=True, services=services)
        finally:
            if server is not None:  # closed by its run, unless the store failed first
                server.sock.close()

    serve_through_outages(workspace, serve)


@app.command()
def demo(directory: Annotated[Path | None, typer.Argument(
             help="Where to create the demo workspace (default: a new temporary folder).")]
         = None,
         template: Annotated[str, typer.Option(
             help="freelancer (a studio's clients and projects, on local email, calendar, "
                  "billing and git servers) or example (a small company's invoices).")]
         = "freelancer",
         keep_running: Annotated[bool, typer.Option(
             help="Leave the servers, the workers and the dashboard running at the end.")]
         = False) -> None:
    """Create a workspace and run it end to end, saying what happens."""
    if template == "example":
        from soloist.interfaces.cli.demo import run_demo

        run_demo(directory)
        return
    if template != "freelancer":
        from soloist.errors import InputError

        raise InputError(f"there is no demo {template!r}; choose freelancer or example")
    import tempfile

    from soloist.demo.freelancer import run as run_freelancer

    root = directory or Path(tempfile.mkdtemp(prefix="soloist-studio-"))
    run_freelancer(root, keep_running=keep_running)


def _register_more() -> None:
    from soloist.interfaces.cli import approvals, definitions, hooks, mcp, overrides, runs
    from soloist.interfaces.cli.audit import audit_app
    from soloist.interfaces.cli.clock import clock_app
    from soloist.interfaces.cli.connectors import connectors_app
    from soloist.interfaces.cli.memory import memory_app
    from soloist.interfaces.cli.secrets import secret_app
    from soloist.interfaces.cli.snapshots import snapshot_app
    from soloist.interfaces.cli.tokens import token_app
    from soloist.interfaces.cli.workers import workers_app

    definitions.register(app)
    runs.register(app)
    approvals.register(app)
    overrides.register(app)
    hooks.register(app)
    app.command("mcp")(mcp.serve)
    app.add_typer(secret_app, name="secret")
    app.add_typer(memory_app, name="memory")
    app.add_typer(snapshot_app, name="snapshot")
    app.add_typer(audit_app, name="audit")
    app.add_typer(connectors_app, name="connectors")
    app.add_typer(token_app, name="token")
    app.add_typer(clock_app, name="clock")
    app.add_typer(workers_app, name="workers")


def _shown(message: object) -> str:
    """A message that may quote stored data (an actor, an error), fit for a terminal: its
    own line breaks kept (a deploy lists its problems), every other active character
    escaped."""
    from soloist.control.display import escape

    return escape(str(message), keep="\n")


def main() -> None:
    """Entry point: run the app; a user's mistake is one line on stderr and exit 1."""
    from soloist.errors import SoloistError, describe

    _register_more()
    try:
        # Outside standalone mode click returns the code of a `typer.Exit` instead of
        # raising it, so the code is whatever comes back (None when a command returns).
        code = app(standalone_mode=False)
    except SoloistError as exc:
        typer.echo(f"error: {_shown(exc)}", err=True)
        sys.exit(EXIT_USER)
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
            typer.echo(f"error: {_shown(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("SOLOIST_DEBUG"):
            raise
        typer.echo(f"internal error: {_shown(describe(exc))} "
                   "(set SOLOIST_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
