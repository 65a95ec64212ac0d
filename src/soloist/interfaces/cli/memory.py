"""``soloist memory put | get | history | why | revert | facts | document | search |
reembed``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace

memory_app = typer.Typer(no_args_is_help=True, help="Versioned facts with provenance.")

Reason = Annotated[str, typer.Option("--reason", help="Why (kept with the version).")]


def _value(text: str) -> Any:
    """A value is JSON when it parses as JSON, else the text itself (but never a NaN or an
    infinity, which are not JSON)."""
    from soloist import jsonvalues

    try:
        return jsonvalues.loads(text, "the value")
    except json.JSONDecodeError:
        return text


def _timestamp(flag: str, text: str | None) -> float | None:
    from datetime import datetime

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; use ISO form, like 2026-11-01 "
                                 f"or 2026-11-01T09:30", param_hint=flag) from None


def _print_versions(rows: list[Any], as_json: bool) -> None:
    from soloist.interfaces.cli import render

    if as_json:
        render.print_json(rows)
        return
    out = render.table("version", "op", "value", "by", "when", "run/step", "reason",
                       ids=("run/step",))
    for r in rows:
        cause = f"{r.run_id}/{r.step_id}" if r.run_id else "-"
        out.add_row(f"v{r.version}", r.op, render.short(r.value, 40), r.actor,
                    render.when(r.recorded_at), cause, render.short(r.reason, 40))
    render.console().print(out)


def _sources(refs: Any) -> str:
    """Provenance references as one line: ``email message_id=<...> event=7; ...``."""
    if not isinstance(refs, list):
        return ""
    return "; ".join(" ".join([str(r.get("kind", "?")), *(
        f"{k}={v}" for k, v in r.items() if k != "kind")]) for r in refs if isinstance(r, dict))


@memory_app.command("put")
def put(namespace: str, subject: str, key: str,
        value: Annotated[str, typer.Argument(help="JSON, or plain text.")],
        reason: Reason, workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """A person's write: a new version of NAMESPACE/SUBJECT/KEY."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        row = ws.put_fact(namespace, subject, key, _value(value), reason).row
    _print_versions([row], as_json) if as_json else typer.echo(
        render.plain(f"{namespace}/{subject}/{key} is now v{row.version}"))


@memory_app.command("get")
def get(namespace: str, subject: str, key: str,
        as_of: Annotated[float | None, typer.Option(help="Epoch seconds.")] = None,
        workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """The current value (or the one current at --as-of)."""
    from soloist.errors import NotFound

    with open_workspace(workspace) as ws:
        row = ws.get_fact(namespace, subject, key, as_of=as_of)
    if row is None:
        raise NotFound(f"{namespace}/{subject}/{key} has no current value")
    if as_json:
        _print_versions([row], True)
    else:
        from soloist.interfaces.cli import render

        typer.echo(render.json_line(row.value))


@memory_app.command("history")
def history(namespace: str, subject: str, key: str, workspace: WorkspaceOpt = DEFAULT_WS,
            as_json: JsonOpt = False) -> None:
    """Every version, oldest first."""
    with open_workspace(workspace) as ws:
        rows = ws.fact_history(namespace, subject, key)
    _print_versions(rows, as_json)


@memory_app.command("why")
def why(namespace: str, subject: str, key: str, workspace: WorkspaceOpt = DEFAULT_WS,
        as_json: JsonOpt = False) -> None:
    """Why we believe it: each version with the events of the step that wrote it."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        chain = ws.why(namespace, subject, key)
    if as_json:
        render.print_json(chain)
        return
    con = render.console()
    for item in chain:
        v = item.version
        con.print(render.line(render.styled(f"v{v.version}", "bold"), " ", v.op, " ",
                              render.text(v.value, 60), " by ", v.actor, " ",
                              render.when(v.recorded_at), ": ", v.reason))
        if v.sources:
            con.print(f"    from {render.plain(_sources(v.sources))}")
        for e in item.events:
            con.print(f"    {e.seq:>6} {render.plain(e.kind):<18} {render.short(e.data, 70)} "
                      f"[{render.plain(e.actor)}]")


@memory_app.command("revert")
def revert(reason: Reason,
           fact: Annotated[list[str] | None, typer.Argument(
               help="NAMESPACE SUBJECT KEY of one fact (with --to).", show_default=False)
           ] = None,
           run: Annotated[str | None, typer.Option("--run", help="Undo this run's writes.")
                          ] = None,
           to: Annotated[int | None, typer.Option("--to", help="The version to go back to.")
                         ] = None,
           workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Undo every memory write of one run (--run), or bring one fact back to an older
    version (NAMESPACE SUBJECT KEY --to N); either way as new versions that say so."""
    from soloist.interfaces.cli import render

    one_fact = fact is not None and len(fact) == 3 and to is not None
    if (run is None) == (not one_fact) or (run is not None and (fact or to is not None)):
        raise typer.BadParameter("give either --run RUN_ID, or NAMESPACE SUBJECT KEY --to N")
    with open_workspace(workspace) as ws:
        if run is not None:
            written, skipped = ws.revert_run(run, reason)
            typer.echo(f"reverted {len(written)} fact(s) written by run {run}")
            for line in skipped:
                typer.echo(f"left as is: {render.plain(line)}")
            return
        assert fact is not None and to is not None
        namespace, subject, key = fact
        row = ws.revert_fact(namespace, subject, key, to, reason)
    typer.echo(render.plain(f"{'/'.join(fact)} is now v{row.version} (the value of v{to})"))


@memory_app.command("facts")
def facts(namespace: Annotated[str, typer.Argument(help="A glob, like leads/*.")] = "*",
          workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """The current facts of the matching namespaces."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        rows = ws.facts(namespace)
    if as_json:
        render.print_json(rows)
        return
    out = render.table("namespace", "subject", "key", "value", "version", "by",
                       ids=("namespace", "subject", "key"))
    for r in rows:
        out.add_row(r.namespace, r.subject, r.key, render.short(r.value, 50), f"v{r.version}",
                    r.actor)
    render.console().print(out)


@memory_app.command("import")
def import_(path: Annotated[Path, typer.Argument(help="A JSONL file, or a folder of .md.")],
            namespace: Annotated[str | None, typer.Option(
                help="For Markdown, and for lines that name none.")] = None,
            workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Import facts and documents; a bad line stops the import before any write."""
    with open_workspace(workspace) as ws:
        counts = ws.import_memory(path, namespace)
    typer.echo(f"imported {counts['facts']} fact(s) and {counts['documents']} document(s)")


@memory_app.command("export")
def export(namespace: Annotated[str, typer.Argument(help="A glob.")] = "*",
           workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """The current facts and documents as JSONL on standard output (importable again)."""
    with open_workspace(workspace) as ws:
        for line in ws.export_memory(namespace):
            typer.echo(line)


@memory_app.command("document")
def document(namespace: str, key: str,
             version: Annotated[int | None, typer.Option(min=1, help="This version.")] = None,
             as_of: Annotated[str | None, typer.Option(
                 "--as-of", help="The version newest at this date (ISO).")] = None,
             history: Annotated[bool, typer.Option(
                 "--history", help="Every version: who wrote it, when and why.")] = False,
             workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """One document's text (newest, --version N or --as-of DATE), or its --history."""
    from soloist.interfaces.cli import render

    at = _timestamp("--as-of", as_of)
    with open_workspace(workspace) as ws:
        if history:
            rows = ws.document_history(namespace, key)
        else:
            rows = [ws.document(namespace, key, version=version, as_of=at)]
    if as_json:
        render.print_json(rows if history else rows[0])
    elif history:
        out = render.table("version", "by", "when", "run/step", "reason", "from", "text",
                           ids=("run/step",))
        for r in rows:
            cause = f"{r.run_id}/{r.step_id}" if r.run_id else "-"
            meta = r.metadata if isinstance(r.metadata, dict) else {}
            out.add_row(f"v{r.version}", r.actor, render.when(r.created_at), cause,
                        render.short(r.reason, 40),
                        render.short(_sources(meta.get("sources")) or "-", 40),
                        render.short(r.text, 50))
        render.console().print(out)
    else:
        typer.echo(render.block(rows[0].text))


@memory_app.command("search")
def search(query: str,
           namespace: Annotated[str, typer.Option(help="A glob, like clients/*.")] = "*",
           k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many.")] = 10,
           subject: Annotated[str | None, typer.Option(
               help="Only documents whose metadata names this subject.")] = None,
           since: Annotated[str | None, typer.Option(
               help="Written on or after this date (ISO, like 2026-11-01).")] = None,
           until: Annotated[str | None, typer.Option(help="Written before this date.")] = None,
           recency_days: Annotated[float | None, typer.Option(
               help="Favour recent documents: this many days old counts half.")] = None,
           as_of: Annotated[str | None, typer.Option(
               "--as-of", help="Facts as they stood at this date.")] = None,
           workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Search memory: documents (keyword and vectors) and facts, fused by reciprocal
    rank."""
    from soloist.interfaces.cli import render

    since_at, until_at, at = (_timestamp(flag, text) for flag, text in (
        ("--since", since), ("--until", until), ("--as-of", as_of)))
    with open_workspace(workspace) as ws:
        hits = ws.search_memory(query, namespace, k, subject=subject, since=since_at,
                                until=until_at, recency_days=recency_days, as_of=at)
    if as_json:
        render.print_json([h.as_dict() for h in hits])
        return
    if not hits:
        typer.echo(f"nothing in {render.plain(namespace)} matches "
                   f"{render.plain(repr(query))}")
        return
    out = render.table("#", "kind", "where", "text", ids=("where",))
    for rank, h in enumerate(hits, start=1):
        out.add_row(str(rank), h.kind, f"{h.namespace}/{h.key}", render.short(h.text, 80))
    render.console().print(out)


@memory_app.command("status")
def status(workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Which model memory's vectors come from, how many chunks have one, how they are
    searched."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        figures = ws.memory_status()
    if as_json:
        render.print_json(figures)
        return
    for key, value in figures.items():
        typer.echo(f"{key:<15} {'-' if value is None else value}")
    if figures["reembed_needed"]:
        typer.echo("run `soloist memory reembed` to give every chunk a vector of "
                   f"{figures['embedder']}")


@memory_app.command("reembed")
def reembed(workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Make every current chunk's vector anew with the configured embedder (after a change
    of model); resumes where a stopped run left off."""
    with open_workspace(workspace) as ws:
        done = ws.reembed(progress=lambda n: typer.echo(f"  {n} chunk(s) embedded", err=True))
        model = ws.memory_status()["model"]
    typer.echo(f"re-embedded {done} chunk(s) with {model}")
