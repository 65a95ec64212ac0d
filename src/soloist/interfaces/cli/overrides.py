"""``soloist overrides``: the edits a person made to drafts at gates, newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace


def changed(before: Any, after: Any, width: int = 30) -> str:
    """What an edit changed, field by field: ``body: 'old…' -> 'new…'``."""
    from soloist.interfaces.cli import render

    if not (isinstance(before, dict) and isinstance(after, dict)):
        return f"{render.short(before, width)} -> {render.short(after, width)}"
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return "; ".join(f"{k}: {render.short(before.get(k), width)} -> "
                     f"{render.short(after.get(k), width)}" for k in keys)


def overrides(
    agent: Annotated[str | None, typer.Option(
        help="Only edits of drafts by this agent.")] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    step: Annotated[str | None, typer.Option(
        help="Only edits at this step, or of drafts this step wrote.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False,
) -> None:
    """The edits a person made to drafts at gates (before, after, why): later drafts by
    the same agent for the same step see the most recent ones as examples."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        found = ws.overrides(agent=agent, playbook=playbook, step=step, limit=limit)
    if as_json:
        render.print_json(found)
        return
    if not found:
        typer.echo("no overrides yet: an edit made to a draft at a gate shows here")
        return
    out = render.table("when", "who", "playbook/step", "drafted by", "what changed",
                       "reason", ids=("playbook/step",))
    for o in found:
        drafted = ", ".join(f"{s.get('step')} ({s.get('agent')})" for s in o["sources"]
                            if isinstance(s, dict))
        out.add_row(render.when(o["at"]), o["actor"], f"{o['playbook'] or '-'}/{o['step']}",
                    drafted or "-", changed(o["before"], o["after"]),
                    render.short(o["reason"] or "", 40))
    render.console().print(out)


def register(app: typer.Typer) -> None:
    app.command()(overrides)
