"""``soloist runs | show | log | cancel``: looking at runs and their timelines."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from soloist.interfaces.cli.options import DEFAULT_WS, JsonOpt, WorkspaceOpt, open_workspace


def list_runs(
    state: Annotated[str | None, typer.Option(help="Only runs in this state.")] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        rows = ws.runs(state=state, playbook=playbook, limit=limit)
    if as_json:
        render.print_json(rows)
        return
    out = render.table("run", "playbook", "state", "started", "took", "error", ids=("run",))
    for r in rows:
        out.add_row(
            r.id,
            f"{r.playbook} v{r.playbook_version}",
            render.state(r.state),
            render.ago(r.created_at),
            render.duration(r.created_at, r.finished_at),
            render.short(r.error or "", 50),
        )
    render.console().print(out)


def show(run_id: str,
         step: Annotated[str | None, typer.Option(
             "--step", help="One step: what its agent saw, did and decided.")] = None,
         workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """The step timeline of a run: states, attempts, durations, intents, approvals."""
    from soloist.interfaces.cli import render

    if step is not None:
        show_step(run_id, step, workspace, as_json)
        return
    with open_workspace(workspace) as ws:
        detail = ws.show(run_id)
        ws_costs = ws.costs(run_id)
        # Steps whose agent's work was done by its deterministic fallback (README:
        # "Agents, models and tools"): said beside their state.
        fell_back = {e.step_id: e.data for e in ws.log(run_id=run_id, limit=100_000)
                     if e.kind == "agent.fallback"}
    if as_json:
        render.print_json({**render.to_jsonable(detail), "costs": ws_costs,
                           "fallbacks": fell_back})
        return
    run = detail.run
    con = render.console()
    con.print(render.line(
        render.styled(run.id, "bold"), " ", run.playbook, f" v{run.playbook_version} ",
        render.state(run.state), "  started ", render.when(run.created_at), " by ",
        run.created_by, ", took ", render.duration(run.created_at, run.finished_at)))
    con.print(render.line("inputs: ", render.text(run.inputs)))
    if run.error:
        con.print(render.line(render.styled("error:", "red"), " ", run.error))
    per_step: dict[str, float] = {}
    for call in ws_costs:
        per_step[call.step_id or ""] = per_step.get(call.step_id or "", 0.0) + call.cost_usd
    steps = render.table("step", "state", "attempt", "started", "took", "cost",
                         "output / error", ids=("step",))
    for s in detail.steps:
        steps.add_row(
            s.step_id,
            render.line(render.state(s.state), " (fallback)") if s.step_id in fell_back
            else render.state(s.state),
            str(s.attempt),
            render.when(s.started_at),
            render.duration(s.started_at, s.finished_at),
            f"${per_step[s.step_id]:.6f}" if s.step_id in per_step else "-",
            render.short(s.error if s.error else s.output, 60),
        )
    con.print(steps)
    if detail.intents:
        intents = render.table("intent key", "tool", "status", "args", "result",
                               ids=("intent key",))
        for i in detail.intents:
            intents.add_row(
                i.idempotency_key,
                i.tool,
                i.status,
                render.short(i.args, 40),
                render.short(i.error or i.result, 40),
            )
        con.print(intents)
    if ws_costs:
        spent = sum(c.cost_usd for c in ws_costs)
        tokens_in = sum(c.input_tokens for c in ws_costs)
        tokens_out = sum(c.output_tokens for c in ws_costs)
        cached = sum(1 for c in ws_costs if c.cached)
        con.print(f"cost: ${spent:.6f} for {len(ws_costs)} model call(s), {tokens_in} tokens "
                  f"in, {tokens_out} out, {cached} from the cache")
    for a in detail.approvals:
        decided = (
            (a.decision, " by ", a.decided_by or "-", " ", render.when(a.decided_at),
             *((": ", a.note) if a.note else ()))
            if a.decision
            else ("waiting",)
        )
        con.print(render.line("approval ", a.id, " on ", a.step_id, ": ", a.message, " -> ",
                              *decided))


def log(
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    limit: Annotated[int, typer.Option(help="How many events.")] = 200,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """The episodic log: every transition, dispatch, decision and deploy."""
    import json

    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        after = 0
        if not follow and run is None:
            after = max(0, ws.log_head() - limit)
        while True:
            events = ws.log(run_id=run, after=after, limit=limit if not follow else 1000)
            for e in events:
                if as_json:
                    print(json.dumps(render.to_jsonable(e), default=str), flush=True)
                else:
                    where = f"{e.run_id or '-'}{'/' + e.step_id if e.step_id else ''}"
                    typer.echo(
                        f"{e.seq:>6} {render.when(e.ts)} {render.plain(e.kind):<18} "
                        f"{render.plain(where)} {render.short(e.data, 80)}  "
                        f"[{render.plain(e.actor)}]"
                    )
                after = e.seq
            if not follow:
                return
            time.sleep(0.5)


def cancel(run_id: str, workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False) -> None:
    """Cancel a running run; what it dispatched is compensated."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        row = ws.cancel(run_id)
    if as_json:
        render.print_json(row)
    else:
        typer.echo(f"{row.id} {row.state}")


def show_step(run_id: str, step_id: str, workspace: Any, as_json: bool) -> None:
    """What one step saw (its working context), and what it did, from the log."""
    from soloist.errors import NotFound
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        ws.get_run(run_id)
        events = [e for e in ws.log(run_id=run_id, limit=100_000) if e.step_id == step_id]
    if not events:
        raise NotFound(f"run {run_id} has no step {step_id!r} in its log")
    if as_json:
        render.print_json(events)
        return
    con = render.console()
    for e in events:
        if e.kind == "context.built":
            con.print(render.line(render.styled("context", "bold"),
                                  f" {e.data['tokens']} of {e.data['budget']} tokens:"))
            for item in e.data["included"]:
                con.print(f"    {render.plain(item['kind']):<12} {render.plain(item['ref']):<50} "
                          f"{item['tokens']:>6} tokens")
            for item in e.data["left_out"]:
                con.print(f"    left out     {render.plain(item['ref'])}")
        elif e.kind == "agent.fallback":
            con.print(render.line(render.styled("fallback", "bold yellow"), " ",
                                  str(e.data.get("fallback")), " did the work of agent ",
                                  str(e.data.get("agent")), ": ", str(e.data.get("reason"))))
        else:
            con.print(f"{e.seq:>6} {render.when(e.ts)} {render.plain(e.kind):<18} "
                      f"{render.plain(e.data)} [{render.plain(e.actor)}]")


def metrics(
    days: Annotated[float, typer.Option("--since", "--days", metavar="DAYS",
                                        help="Over the runs created in the last N days.")] = 30.0,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS, as_json: JsonOpt = False,
) -> None:
    """The five operator measures: completion rate, mean time to recovery, human
    interventions per 100 runs, cost per successful outcome, change lead time."""
    from soloist.interfaces.cli import render

    with open_workspace(workspace) as ws:
        figures = ws.metrics(days, playbook)
    if as_json:
        render.print_json(figures)
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    def usd(value: float | None) -> str:
        return "-" if value is None else f"${value:.6f}"

    def per100(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    def secs(value: float | None) -> str:
        if value is None:
            return "-"
        for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
            if abs(value) >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.2f} s"

    by_state = figures["runs"]
    states = ", ".join(f"{count} {state}" for state, count in sorted(by_state.items()))
    con = render.console()
    scope = f" of {playbook}" if playbook else ""
    summary = render.table("measure", "value",
                           title=f"runs{scope} created in the last {days:g} days")
    summary.add_row("runs", f"{sum(by_state.values())}" + (f" ({states})" if states else ""))
    summary.add_row("completion rate (done / ended)", pct(figures["completion_rate"]))
    summary.add_row("mean time to recovery",
                    f"{secs(figures['mean_time_to_recovery_s'])} "
                    f"({figures['recoveries']} recovered, {figures['unrecovered']} not)")
    summary.add_row("human interventions per 100 runs",
                    per100(figures["human_interventions_per_100_runs"]))
    summary.add_row("cost", usd(figures["cost_usd"]))
    summary.add_row("cost per successful outcome", usd(figures["cost_per_successful_outcome_usd"]))
    summary.add_row("change lead time (mean, latest)",
                    f"{secs(figures['change_lead_time_s'])}, "
                    f"{secs(figures['latest_change_lead_time_s'])}")
    con.print(summary)
    if figures["by_playbook"]:
        out = render.table("playbook", "runs", "completion", "recovery", "per 100 runs",
                           "calls", "tokens in", "tokens out", "cached", "cost",
                           "per success", "lead time")
        for r in figures["by_playbook"]:
            out.add_row(str(r["playbook"]), str(r["started"]), pct(r["completion_rate"]),
                        secs(r["mean_time_to_recovery_s"]),
                        per100(r["human_interventions_per_100_runs"]), str(r["calls"]),
                        str(r["input_tokens"]), str(r["output_tokens"]), str(r["cached"]),
                        usd(r["cost_usd"]), usd(r["cost_per_successful_outcome_usd"]),
                        secs(r["change_lead_time_s"]))
        con.print(out)
    if figures["changes"]:
        out = render.table("change", "version", "deployed", "by", "first done", "lead time")
        for c in figures["changes"]:
            out.add_row(f"{c['kind']} {c['name']}", f"v{c['version']}",
                        render.when(c["deployed_at"]), str(c["deployed_by"]),
                        render.when(c["first_done_at"]), secs(c["lead_time_s"]))
        con.print(out)


def register(app: typer.Typer) -> None:
    app.command("runs")(list_runs)
    app.command()(show)
    app.command()(log)
    app.command()(cancel)
    app.command()(metrics)
