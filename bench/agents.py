"""Agent benchmark: orchestration overhead per model round trip, and the local model.

    python bench/agents.py [--json] [--turns N] [--runs N] [--threads N] [--skip-local]

1. **Overhead per LLM round trip** (the model excluded): an agent step whose scripted
   model calls a cheap read tool ``N - 1`` times, then answers (``N`` round trips,
   default 80; an agent allows at most 100 turns). Measured two ways, several runs each:

   * *durable*: the full path: a workspace on SQLite in a temporary directory, the run
     started with ``ws.start``, drained by ``ws.worker().run(until_idle=True)``; every
     call goes through the call guard (breaker, cache lookup, budget, cost ledger) and
     every call, policy decision and tool result is written to the episodic log;
   * *baseline*: the same loop (same agent, tool, policies, scripted replies) with
     :func:`soloist.execution.agent_loop.run_agent` called directly, with no guard and
     no store: nothing is persisted.

   Per round trip = wall time of the step (of the run, for the durable path: enqueue to
   done) / N; medians over the runs. Each run has its own input, so the guard's
   response cache never answers.

2. **The local model** (``LocalProvider``, default SmolLM2-135M-Instruct Q4_1): time to
   first token (``stream=True``) and decode speed in tokens/s, a few prompts, medians;
   plus the latency of one JSON-schema-constrained reply. ``null`` with a reason when
   llama-cpp-python or the model is missing.

Progress goes to stderr; the table to stdout; with ``--json`` the last line of stdout is
one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_OVERHEAD_MS = 2.0

TOOLS = '''\
"""A cheap read tool for the agent benchmark."""
from soloist.execution.tools.base import tool


@tool("bench.echo", effect="read")
def echo(i: int) -> dict:
    """Echo a number."""
    return {"i": i}
'''

AGENT = """\
name: looper
instructions: You call bench.echo until told to stop, then answer.
model: worker
tools: [bench.echo]
max_turns: 100
"""

PLAYBOOK = """\
name: loop
inputs: {type: object, properties: {n: {type: integer}}}
steps:
  - id: work
    agent: looper
    task: "Run number {{ inputs.n }}"
    output:
      type: object
      required: [done]
      properties: {done: {type: integer}}
"""

OUTPUT_SCHEMA: dict[str, Any] = {"type": "object", "required": ["done"],
                                 "properties": {"done": {"type": "integer"}}}

PROMPTS = (
    "Explain in a few sentences why the sky is blue.",
    "Write a short paragraph about the history of the bicycle.",
    "List five fruits and say one thing about each.",
)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- 1. orchestration overhead ---------------------------------------------------------


def make_workspace(root: Path) -> Path:
    (root / "playbooks").mkdir(parents=True, exist_ok=True)
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "soloist.toml").write_text(
        '[workspace]\nname = "benchagents"\n\n[tools]\nmodules = ["benchagenttools"]\n')
    (root / "benchagenttools.py").write_text(TOOLS)
    (root / "agents" / "looper.yaml").write_text(AGENT)
    (root / "playbooks" / "loop.yaml").write_text(PLAYBOOK)
    return root


def script(turns: int) -> list[Any]:
    """``turns - 1`` tool calls, then the answer: ``turns`` round trips."""
    from soloist.testing.llm import reply, tool_call

    calls: list[Any] = [tool_call("bench.echo", {"i": k}, id=f"c{k}", model="m")
                        for k in range(turns - 1)]
    return [*calls, reply(json.dumps({"done": turns}), model="m")]


def durable(root: Path, db: Path, turns: int, runs: int) -> dict[str, Any]:
    """The full path: start, claim, agent loop through the guard, log, commit."""
    from soloist.execution.llm.router import FixedRouter
    from soloist.testing.llm import ScriptedProvider
    from soloist.workspace import Workspace

    per_trip: list[float] = []
    events: list[int] = []
    with Workspace(root, database_url=f"sqlite:///{db}") as ws:
        ws.deploy(actor="bench")
        worker = ws.worker()
        for n in range(runs + 1):  # the first run warms up (imports, schema compilation)
            provider = ScriptedProvider(script(turns))
            ws.runner.router = FixedRouter(provider, "m")
            t0 = time.perf_counter()
            run_id = ws.start("loop", {"n": n})
            worker.run(until_idle=True)
            elapsed = time.perf_counter() - t0
            run = ws.get_run(run_id)
            if run.state != "done" or provider.calls != turns:
                raise RuntimeError(f"durable run {n}: state {run.state}, "
                                   f"{provider.calls}/{turns} calls, error {run.error}")
            if n:
                per_trip.append(elapsed * 1000 / turns)
                events.append(len(ws.log(run_id=run_id)))
                ledger = len(ws.costs(run_id))
    return {"overhead_ms_per_roundtrip": statistics.median(per_trip),
            "overhead_ms_per_roundtrip_min": min(per_trip),
            "overhead_ms_per_roundtrip_max": max(per_trip),
            "durable_events_per_run": statistics.median(events),
            "durable_ledger_rows_per_run": ledger}


def baseline(root: Path, db: Path, turns: int, runs: int) -> dict[str, Any]:
    """The same agent loop with no guard and no store."""
    from soloist.execution.agent_loop import AgentStep, run_agent
    from soloist.execution.context import StepContext
    from soloist.execution.llm.router import FixedRouter
    from soloist.testing.llm import ScriptedProvider
    from soloist.workspace import Workspace

    with Workspace(root, database_url=f"sqlite:///{db}") as ws:
        ws.deploy(actor="bench")
        ws.connect_tools()
        agent = ws.registry.agent("looper", None)
        tools = [ws.tools.get(name) for name in agent.tools]
        policies = ws.registry.policies()
    per_trip: list[float] = []
    for n in range(runs + 1):
        provider = ScriptedProvider(script(turns))
        step = AgentStep(agent, f"Run number {n}", tools, OUTPUT_SCHEMA, "loop")
        ctx = StepContext(f"run-{n}", "work", 1, {"n": n}, {}, "loop")
        t0 = time.perf_counter()
        result = run_agent(step, ctx, FixedRouter(provider, "m"), policies, str(root))
        elapsed = time.perf_counter() - t0
        if result.output != {"done": turns} or provider.calls != turns:
            raise RuntimeError(f"baseline run {n}: output {result.output!r}")
        if n:
            per_trip.append(elapsed * 1000 / turns)
    return {"baseline_ms_per_roundtrip": statistics.median(per_trip),
            "baseline_ms_per_roundtrip_min": min(per_trip),
            "baseline_ms_per_roundtrip_max": max(per_trip)}


# -- 2. the local model ----------------------------------------------------------------


def local_model(prompts: int, max_tokens: int, threads: int | None) -> dict[str, Any]:
    from soloist.errors import ConfigError
    from soloist.execution.llm.base import ChatRequest, Message
    from soloist.execution.llm.local_provider import LocalProvider, llama_cpp_available

    empty: dict[str, Any] = {"local_tokens_per_s": None, "local_ttft_ms": None}
    if not llama_cpp_available():
        return {**empty, "local_unavailable":
                "llama-cpp-python is not installed (pip install 'soloist[local]')"}
    try:
        provider = LocalProvider(n_threads=threads)
        t0 = time.perf_counter()
        llama = provider.load()
        load_ms = (time.perf_counter() - t0) * 1000
    except ConfigError as exc:
        return {**empty, "local_unavailable": exc.message}
    ttft: list[float] = []
    decode: list[float] = []
    e2e: list[float] = []
    tokens: list[int] = []
    texts = [PROMPTS[i % len(PROMPTS)] for i in range(prompts + 1)]
    for i, prompt in enumerate(texts):  # the first one warms up
        with provider.lock:
            start = time.perf_counter()
            first: float | None = None
            count = 0
            for chunk in llama.create_chat_completion(
                    messages=[{"role": "user", "content": prompt}], temperature=0,
                    max_tokens=max_tokens, stream=True):
                if chunk["choices"][0]["delta"].get("content"):
                    count += 1
                    if first is None:
                        first = time.perf_counter()
            end = time.perf_counter()
        if i == 0 or first is None:
            continue
        ttft.append((first - start) * 1000)
        tokens.append(count)
        if count > 1:
            decode.append((count - 1) / (end - first))
        e2e.append(count / (end - start))
    schema = {"type": "object", "required": ["city", "country"],
              "properties": {"city": {"type": "string"}, "country": {"type": "string"}}}
    request = ChatRequest(model="smollm2", temperature=0, max_tokens=64,
                          response_schema=schema,
                          messages=(Message.user("Name a large city and its country, "
                                                 "as JSON."),))
    structured = [provider.complete(request) for _ in range(3)]
    provider.close()
    return {
        "local_model": provider.model_path.name,
        "local_model_size_mb": provider.model_path.stat().st_size / 1e6,
        "local_n_threads": llama.n_threads,
        "local_load_ms": load_ms,
        "local_ttft_ms": statistics.median(ttft) if ttft else None,
        "local_tokens_per_s": statistics.median(decode) if decode else None,
        "local_e2e_tokens_per_s": statistics.median(e2e) if e2e else None,
        "local_tokens_per_prompt": statistics.median(tokens) if tokens else None,
        "local_prompts": len(ttft),
        "local_structured_ms": statistics.median(r.latency_ms for r in structured),
        "local_structured_reply": structured[-1].text,
    }


# -- report ----------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def add(name: str, value: str, base: str = "", ratio: str = "", goal: str = "",
            status: str = "") -> None:
        rows.append((name, value, base, ratio, goal, status))

    over, base = r.get("overhead_ms_per_roundtrip"), r.get("baseline_ms_per_roundtrip")
    ok = None if over is None else over < GOAL_OVERHEAD_MS
    add(f"agent round trip, durable ({r['turns']}/step)", _fmt(over, " ms"),
        f"no persistence {_fmt(base, ' ms')}", _fmt(r.get("overhead_ratio"), "x"),
        f"< {GOAL_OVERHEAD_MS:g} ms", "n/a" if ok is None else ("PASS" if ok else "FAIL"))
    add("  min / max over runs",
        f"{_fmt(r.get('overhead_ms_per_roundtrip_min'))} / "
        f"{_fmt(r.get('overhead_ms_per_roundtrip_max'))} ms",
        f"{_fmt(r.get('baseline_ms_per_roundtrip_min'))} / "
        f"{_fmt(r.get('baseline_ms_per_roundtrip_max'))} ms")
    add("  persistence cost per round trip", _fmt(r.get("persistence_ms_per_roundtrip"),
                                                   " ms"))
    add("  events / ledger rows per run", f"{_fmt(r.get('durable_events_per_run'))} / "
        f"{_fmt(r.get('durable_ledger_rows_per_run'))}")
    if r.get("local_unavailable"):
        add("local model", "n/a", _short(r["local_unavailable"]))
    else:
        add(f"local model ({r.get('local_model')})",
            f"{_fmt(r.get('local_model_size_mb'), ' MB')}, "
            f"{r.get('local_n_threads')} thread(s)",
            f"load {_fmt(r.get('local_load_ms'), ' ms')}")
        add("  time to first token (median)", _fmt(r.get("local_ttft_ms"), " ms"),
            f"{r.get('local_prompts')} prompts")
        add("  decode speed (median)", _fmt(r.get("local_tokens_per_s"), " tok/s"),
            f"end to end {_fmt(r.get('local_e2e_tokens_per_s'), ' tok/s')}")
        add("  JSON-schema reply (median of 3)", _fmt(r.get("local_structured_ms"), " ms"),
            _short(r.get("local_structured_reply"), 50))
    header = ("figure", "value", "baseline", "ratio", "goal", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(6)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _short(text: Any, width: int = 70) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true",
                        help="print every figure as one JSON object on the last line")
    parser.add_argument("--turns", type=int, default=80,
                        help="LLM round trips per agent step (2..100, default 80)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per path")
    parser.add_argument("--prompts", type=int, default=3, help="local model prompts")
    parser.add_argument("--max-tokens", type=int, default=128,
                        help="tokens per local model reply (default 128)")
    parser.add_argument("--threads", type=int, default=None,
                        help="local model threads (default: llama.cpp's, half the CPUs)")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args(argv)
    if not 2 <= args.turns <= 100:
        parser.error("--turns must be between 2 and 100 (an agent's max_turns)")

    results: dict[str, Any] = {"turns": args.turns, "runs": args.runs,
                               "cpus": os.cpu_count(), "python": platform.python_version()}
    tmp = Path(tempfile.mkdtemp(prefix="soloist-bench-agents-", dir=args.tmpdir))
    try:
        root = make_workspace(tmp / "ws")
        sys.path.insert(0, str(root))
        log(f"baseline: run_agent directly, {args.runs} runs x {args.turns} round trips")
        results.update(baseline(root, tmp / "baseline.db", args.turns, args.runs))
        log(f"durable: SQLite workspace, {args.runs} runs x {args.turns} round trips")
        results.update(durable(root, tmp / "durable.db", args.turns, args.runs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    over, base = results["overhead_ms_per_roundtrip"], results["baseline_ms_per_roundtrip"]
    results["overhead_ratio"] = over / base if base else None
    results["persistence_ms_per_roundtrip"] = over - base
    results["goal_overhead_under_2ms"] = over < GOAL_OVERHEAD_MS

    if args.skip_local:
        results.update({"local_tokens_per_s": None, "local_ttft_ms": None,
                        "local_unavailable": "skipped (--skip-local)"})
    else:
        log("local model: loading and streaming")
        results.update(local_model(args.prompts, args.max_tokens, args.threads))
        if results.get("local_unavailable"):
            log(f"local model figures unavailable: {results['local_unavailable']}")

    print(table(results))
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
