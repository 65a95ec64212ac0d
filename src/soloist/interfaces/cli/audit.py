"""``soloist audit``: checking the episodic log, and anchoring its head outside the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

audit_app = typer.Typer(no_args_is_help=True, help="Check the episodic log.")

KeyOpt = Annotated[Path | None, typer.Option(
    "--key", envvar="SOLOIST_AUDIT_KEY_FILE", show_envvar=True,
    help="A key file outside the workspace: anchors are signed (HMAC-SHA256) with it.")]


@audit_app.command("verify")
def audit_verify(
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
    anchor: Annotated[Path | None, typer.Option(
        "--anchor", envvar="SOLOIST_AUDIT_ANCHOR_FILE", show_envvar=True,
        help="An anchor file: check that the log still extends every anchor in it.")] = None,
    key: KeyOpt = None,
) -> None:
    """Recompute the hash chain, compare its end with the stored head (and the anchors);
    report the first broken link."""
    from soloist.interfaces.cli.render import print_json

    with open_workspace(workspace) as ws:
        report = ws.verify(anchor, key)
    if as_json:
        print_json(report)
    elif report.ok:
        head = report.head
        typer.echo(f"ok: {report.checked} events, chain intact")
        if head is not None:
            typer.echo(f"head: event {head.seq}, hash {head.hash or '(empty log)'}")
        if anchor is not None:
            typer.echo(f"anchors: {report.anchors} in {anchor}, every one still in the log "
                       f"(the newest names event {report.anchor_seq})")
    else:
        at = f" at event {report.broken_at}" if report.broken_at is not None else ""
        after = (f" ({report.checked} events before it are intact)" if report.cause == "chain"
                 else "")
        typer.echo(f"BROKEN{at}: {report.problem}{after}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    to: Annotated[Path, typer.Option(
        "--to", envvar="SOLOIST_AUDIT_ANCHOR_FILE", show_envvar=True,
        help="The anchor file to append the head to, outside the workspace.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
    key: KeyOpt = None,
) -> None:
    """Verify the log, then append its head (event, hash, time) to a file you keep
    elsewhere; 'audit verify --anchor FILE' later proves the log still extends it."""
    from soloist.interfaces.cli.render import print_json

    with open_workspace(workspace) as ws:
        anchor = ws.anchor(to, key)
    if as_json:
        print_json({"file": str(to), "seq": anchor.seq, "hash": anchor.hash,
                    "time": anchor.time, "signed": anchor.hmac_sha256 is not None})
    else:
        signed = ", signed" if anchor.hmac_sha256 is not None else ""
        typer.echo(f"anchored event {anchor.seq}, hash {anchor.hash or '(empty log)'} "
                   f"at {anchor.time} in {to}{signed}")
