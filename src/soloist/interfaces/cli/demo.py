"""``soloist demo``: the example workspace end to end, narrated.

It runs the real thing on the embedded default (a SQLite file in the workspace): deploy,
a worker and the scheduler in this process, two invoice runs that stop at gates, one
approved through to the end (which triggers the follow-up playbook by its completion
event), one rejected after its ledger entry was written (so the entry is voided by the
compensating action), and a check of the audit chain.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from rich.console import Console

from soloist.errors import SoloistError
from soloist.interfaces.cli import render
from soloist.interfaces.cli.scaffold import write_example
from soloist.workspace import Workspace

DEMO_ACTOR = "person:demo"


def run_demo(directory: Path | None = None) -> None:
    con = render.console()
    root = directory or Path(tempfile.mkdtemp(prefix="soloist-demo-"))
    write_example(root, force=directory is not None)
    con.rule(render.styled("Soloist demo", "bold"))
    con.print(render.line("1. Example workspace written to ", render.styled(str(root), "bold")))
    with Workspace(root) as ws:
        report = ws.deploy(DEMO_ACTOR)
        deployed = ", ".join(f"{k} {n} v{v}" for k, n, v in report.deployed)
        con.print(f"2. Deployed: {deployed}")
        worker = ws.worker(concurrency=4)
        scheduler = ws.scheduler(worker.id)
        scheduler.interval = 0.1
        threads = [threading.Thread(target=worker.run, daemon=True),
                   threading.Thread(target=scheduler.run, daemon=True)]
        for thread in threads:
            thread.start()
        con.print(f"3. A worker and the scheduler run in this process (store: {ws.store.url})")
        try:
            _scenarios(ws, con)
        finally:
            worker.stop()
            scheduler.stop()
            for thread in threads:
                thread.join(timeout=10)
        report_chain = ws.verify()
        con.print(render.line("8. ", render.styled("soloist audit verify", "bold"),
                              f": {report_chain.checked} events, "
                              f"chain {'intact' if report_chain.ok else 'BROKEN'}"))
        ledger = (root / "ledger.tsv").read_text().strip().splitlines()
        con.print("9. ledger.tsv (the external system) holds each entry once:")
        for line in ledger:
            con.print("   " + line.replace("\t", "  "))  # a str is escaped: \t would show
        table = render.table("run", "playbook", "state", "took", "error", title="Runs",
                             ids=("run",))
        for run in reversed(ws.runs()):
            table.add_row(run.id, run.playbook, render.state(run.state),
                          render.duration(run.created_at, run.finished_at),
                          render.short(run.error or "", 60))
        con.print(table)
    con.print(render.line("Look around: ", render.styled(f"soloist show RUN -w {root}", "bold"),
                          ", ", render.styled(f"soloist log -w {root}", "bold"), ", ",
                          render.styled(f"soloist runs -w {root}", "bold")))


def _gate(ws: Workspace, run_id: str, con: Console) -> str:
    ws.wait(run_id, 30, until_waiting=True)
    pending = ws.approvals(run_id=run_id)
    if not pending:
        raise RuntimeError(f"run {run_id} did not reach a gate")
    waiting = pending[0]
    con.print(render.line("   gate ", render.styled(waiting.approval.id, "bold"), " on step ",
                          waiting.approval.step_id, ": ", waiting.approval.message))
    for intent in waiting.intents:
        con.print(render.line("     will dispatch ", intent.tool, " ", render.text(intent.args),
                              " (key ", intent.idempotency_key, ")"))
    return waiting.approval.id


def _scenarios(ws: Workspace, con: Console) -> None:
    con.print("4. Invoice for Ada (12 h at 95): the draft is checked, then the send waits")
    ada = ws.start("invoice", {"customer": "Ada", "hours": 12, "rate": 95}, actor=DEMO_ACTOR)
    ws.approve(_gate(ws, ada, con), "amount matches the timesheet", actor=DEMO_ACTOR)
    con.print("   approved -> the ledger entry is dispatched once, with its idempotency key")
    ws.approve(_gate(ws, ada, con), "Ada confirmed by email", actor=DEMO_ACTOR)
    done = ws.wait(ada, 30)
    con.print(render.line(f"   run {ada}: ", render.state(done.state)))
    con.print("5. Its completion event run.completed.invoice starts the follow-up playbook")
    follow = _wait_for_playbook(ws, "follow-up")
    con.print(render.line(f"   run {follow}: ", render.state(ws.wait(follow, 30).state)))
    con.print("6. Invoice for Bob: sent, then Bob disputes it and the acknowledgement is "
              "rejected")
    bob = ws.start("invoice", {"customer": "Bob", "hours": 3}, actor=DEMO_ACTOR)
    ws.approve(_gate(ws, bob, con), None, actor=DEMO_ACTOR)
    ws.reject(_gate(ws, bob, con), "Bob disputes the hours", actor=DEMO_ACTOR)
    ended = ws.wait(bob, 30)
    con.print(render.line(f"   run {bob}: ", render.state(ended.state),
                          "; the sent invoice was voided by its compensating action "
                          "(ledger.void)"))
    con.print("7. Timeline of Bob's run:")
    for step in ws.show(bob).steps:
        con.print(render.line(f"   {step.step_id:<24} ", render.state(step.state),
                              f"  attempt {step.attempt}"))
    _agent_scenario(ws, con)


def _agent_scenario(ws: Workspace, con: Console) -> None:
    con.print("7b. An agent drafts a payment reminder for Bob; its output is checked and "
              "the send waits for a person")
    try:
        route = ws.router.route("light")
    except SoloistError as exc:
        con.print(f"   skipped: {exc}")
        return
    con.print(f"   model: {route.provider.name}:{route.model}")
    run_id = ws.start("payment-reminder", {"customer": "Bob", "amount": 270},
                      actor=DEMO_ACTOR)
    ws.wait(run_id, 300, until_waiting=True)
    if ws.get_run(run_id).state != "running":
        con.print(f"   the agent's run ended {ws.get_run(run_id).state}: "
                  f"{ws.get_run(run_id).error}")
        return
    draft = next(s for s in ws.show(run_id).steps if s.step_id == "draft").output
    con.print(render.line("   subject: ", render.text(draft.get("subject", ""), 90)))
    con.print(render.line("   body:    ", render.text(draft.get("body", ""), 90)))
    ws.approve(_gate(ws, run_id, con), "reads fine", actor=DEMO_ACTOR)
    done = ws.wait(run_id, 60)
    calls = ws.costs(run_id)
    tokens_in = sum(c.input_tokens for c in calls)
    tokens_out = sum(c.output_tokens for c in calls)
    spent = sum(c.cost_usd for c in calls)
    con.print(render.line(f"   run {run_id}: ", render.state(done.state),
                          f"; cost ${spent:.6f} for {len(calls)} model call(s), {tokens_in} "
                          f"tokens in, {tokens_out} out (a local model has no price)"))


def _wait_for_playbook(ws: Workspace, playbook: str, timeout: float = 30.0) -> str:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        found = ws.runs(playbook=playbook, limit=1)
        if found:
            return found[0].id
        time.sleep(0.05)
    raise RuntimeError(f"no {playbook} run started within {timeout:g}s")
