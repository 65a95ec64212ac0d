"""What the demo says along the way and at its end: read from the workspace through its
service methods, and from the servers themselves."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console

from soloist.demo.servers import LocalServers
from soloist.demo.workspace import REPOSITORY
from soloist.interfaces.cli import render
from soloist.workspace import Workspace

Say = Callable[[str], None]


def written_by(ws: Workspace, run_id: str, step: str) -> str:
    """Who wrote a step's draft: its template (and why: its ``agent.fallback`` event), or
    its agent."""
    for event in ws.log(run_id=run_id):
        if event.kind == "agent.fallback" and event.step_id == step:
            return f"template: {event.data.get('reason')}"
    agent = next((e.data.get("model") for e in ws.log(run_id=run_id)
                  if e.kind == "llm.call" and e.step_id == step), None)
    return f"written by the agent on {agent}" if agent else "written by the agent"


def lead_stage(ws: Workspace, email: str) -> str | None:
    found = [f for f in ws.facts("leads/*") if f.subject == email and f.key == "stage"]
    return str(found[0].value) if found else None


def pinned(ws: Workspace, run_id: str, name: str = "playbooks/discovery-script") -> Any:
    pins = ws.get_run(run_id).pins or {}
    return (pins.get("documents") or {}).get(name)


def outbox(servers: LocalServers) -> tuple[list[tuple[str, str]], Counter[str | None]]:
    """Every message the SMTP server delivered (recipient, subject), and each Message-ID's
    count."""
    messages = servers.delivered_messages()
    return ([(", ".join(m.rcpt_tos), m.subject) for m in messages],
            Counter(m.message_id for m in messages))


def counted(ws: Workspace, servers: LocalServers) -> dict[str, Any]:
    """What each external system holds at the end, counted in it."""
    shown, ids = outbox(servers)
    events = servers.calendar_events()
    invoices = [i for i in servers.invoices() if i.metadata.get("soloist_intent")]
    sent = servers.invoices_sent()
    branches = sorted({f.value for f in ws.facts("projects/*") if f.key == "branch"})
    commits = {branch: servers.commits(REPOSITORY, str(branch)) for branch in branches}
    return {
        "emails": shown, "email_ids": ids,
        "events": [(e.uid, e.summary) for e in events],
        "event_uids": Counter(e.uid for e in events),
        "invoices": [(i.id, i.status, i.amount, i.customer_email,
                      i.metadata.get("soloist_intent")) for i in invoices],
        "invoice_keys": Counter(i.metadata.get("soloist_intent") for i in invoices),
        "invoices_sent": Counter(str(s["id"]) for s in sent),
        "commits": {b: [(c.subject, c.intent) for c in found if c.intent]
                    for b, found in commits.items()},
        "commit_keys": Counter(c.intent for found in commits.values() for c in found
                               if c.intent),
    }


def _once(counts: Counter[Any]) -> str:
    twice = [k for k, n in counts.items() if n > 1]
    return "each once" if not twice else f"TWICE: {', '.join(map(str, twice))}"


def final(ws: Workspace, servers: LocalServers, leads: dict[str, str], say: Say,
          con: Console, started: float, *, staying: bool = False) -> dict[str, Any]:
    held = counted(ws, servers)
    say(f"6. What the servers hold (counted in them, not in Soloist), "
        f"{time.time() - started:.0f} s after the start:")
    say(f"   SMTP: {len(held['emails'])} emails delivered, by Message-ID "
        f"{_once(held['email_ids'])}:")
    for to, subject in held["emails"]:
        say(f"     to {to}: {subject}")
    say(f"   CalDAV: {len(held['events'])} events, by UID {_once(held['event_uids'])}:")
    for _, summary in held["events"]:
        say(f"     {summary}")
    say(f"   Stripe: {len(held['invoices'])} invoice(s), by key "
        f"{_once(held['invoice_keys'])}; sent {_once(held['invoices_sent'])}:")
    for invoice_id, status, amount, customer, _ in held["invoices"]:
        say(f"     {invoice_id} {status} {amount / 100:.2f} EUR to {customer}")
    say(f"   git: {sum(len(c) for c in held['commits'].values())} commits by Soloist, by "
        f"Soloist-Intent {_once(held['commit_keys'])}:")
    for branch, found in held["commits"].items():
        for subject, _ in found:
            say(f"     {branch}: {subject}")
    figures = ws.metrics(days=30)
    say("   the five operator measures (soloist metrics):")
    say(f"     completion rate {_pct(figures['completion_rate'])}, mean time to recovery "
        f"{_num(figures['mean_time_to_recovery_s'], 's')}, "
        f"{_num(figures['human_interventions_per_100_runs'])} interventions per 100 runs, "
        f"cost per successful outcome {_usd(figures['cost_per_successful_outcome_usd'])}"
        f", change lead time {_num(figures['change_lead_time_s'], 's')}")
    fallbacks = sum(1 for e in ws.log(limit=100_000) if e.kind == "agent.fallback")
    why = " (the local model is too weak for them)" if fallbacks else ""
    say(f"   cost: ${figures['cost_usd']:.6f} for {figures['calls']} model calls; {fallbacks} "
        f"agent steps used their templates{why}")
    chain = ws.verify()
    say(f"   soloist audit verify: {chain.checked} events, chain "
        f"{'intact' if chain.ok else 'BROKEN'}")
    table = render.table("playbook", "runs", "done", "state now", title="Runs")
    by = Counter((r.playbook, r.state) for r in ws.runs(limit=1000))
    for playbook in sorted({p for p, _ in by}):
        states = ", ".join(f"{n} {s}" for (p, s), n in sorted(by.items()) if p == playbook)
        table.add_row(playbook, str(sum(n for (p, _), n in by.items() if p == playbook)),
                      str(by.get((playbook, "done"), 0)), states)
    con.print(table)
    if staying:  # keep_running says where the dashboard is
        return {**held, "figures": figures, "verified": chain.ok, "leads": leads}
    api = ws.settings.api
    link = ws.access.login_link("person:mara").secret
    say(f"   the dashboard: `soloist up -w {ws.root}` serves it at http://{api.host}:"
        f"{api.port}, where this link signs you in once, today: http://{api.host}:"
        f"{api.port}/login?token={link} (`make demo ARGS=--keep-running` keeps the "
        "servers and the dashboard up instead)")
    return {**held, "figures": figures, "verified": chain.ok, "leads": leads}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.6f}"


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{' ' + unit if unit else ''}"


def keep_running(ws: Workspace, servers: LocalServers, say: Say) -> None:
    """`soloist up` in this process (worker, scheduler, mailbox polling, dashboard and API)
    with the servers, until Ctrl-C."""
    from soloist.interfaces.api.app import create_app
    from soloist.interfaces.api.server import WebServer, bind

    server = WebServer(create_app(ws), bind("127.0.0.1", 0))
    host, port = server.address
    link = ws.access.login_link("person:mara").secret
    say(f"   dashboard and API at http://{host}:{port} ; sign in (once): "
        f"http://{host}:{port}/login?token={link}")
    say("   the servers and the workspace keep running; Ctrl-C stops them")
    ws.serve(concurrency=6, scheduler=True, services=[server])
