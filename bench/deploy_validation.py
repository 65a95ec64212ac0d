"""How long a deploy takes to validate a long playbook, now and with the old step order.

    python bench/deploy_validation.py [--sizes 500,1000,2000,4000] [--old-max 2000] [--json]

For each size N, a playbook of N chained steps (each a ``note`` tool step whose text
reads the previous step's output and the first step's) is written into a temporary
workspace, and the script times:

- ``old_order_s``: the topological sort the playbook model used before (copied below as
  the baseline: it rescans every remaining step against a list each round);
- ``order_s``: :func:`soloist.control.playbooks.topological_order` (Kahn's algorithm);
- ``model_s``: ``Playbook.model_validate`` of the parsed data (ids, needs, the order);
- ``deploy_s``: ``load_definitions`` with the deploy checks, as ``soloist deploy`` runs
  it: the file read, parsed and limited, the model, templates and references checked.

The old sort is skipped above ``--old-max`` steps (default 2000: it grows with the cube of
N, about 50 s at 2,000 steps on a loaded two-core machine, so 4,000 take minutes; pass
``--old-max 4000`` to wait for it). One small deploy runs first, so that imports and the
template environment are not counted. A table goes to stdout; with ``--json`` the last
line of stdout is one JSON object of every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from soloist.control.checks import ToolNames
from soloist.control.loader import load_definitions
from soloist.control.playbooks import Playbook, topological_order

TOOLS = ToolNames(frozenset({"note"}))


def old_topological(ids: list[str], needs: dict[str, list[str]]) -> list[str] | None:
    """The order as it was computed before (soloist/control/playbooks.py, until issue 9)."""
    done: list[str] = []
    remaining = dict(needs)
    while remaining:
        ready = [i for i, n in remaining.items() if all(x in done for x in n)]
        if not ready:
            return None
        for i in ready:
            done.append(i)
            del remaining[i]
    return done


def chained(count: int) -> str:
    steps = ["  - {id: s0, tool: note, args: {text: start}}\n"]
    steps += [f'  - {{id: s{i}, tool: note, args: {{text: "{{{{ steps.s{i - 1}.output }}}} '
              f'{{{{ steps.s0.output }}}}"}}}}\n' for i in range(1, count)]
    return f"name: long\nsteps:\n{''.join(steps)}"


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def measure(count: int, old_max: int, folder: Path) -> dict[str, Any]:
    root = folder / f"ws{count}"
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "long.yaml").write_text(chained(count), encoding="utf-8")
    ids = [f"s{i}" for i in range(count)]
    needs = [[]] + [[ids[i - 1]] for i in range(1, count)]
    row: dict[str, Any] = {"steps": count}
    if count <= old_max:
        row["old_order_s"], old = timed(old_topological, ids, dict(zip(ids, needs, strict=True)))
        assert old == ids
    else:
        row["old_order_s"] = None
    row["order_s"], order = timed(topological_order, ids, needs)
    assert order == ids
    old_s = row["old_order_s"]
    row["speedup"] = None if old_s is None else round(old_s / max(row["order_s"], 1e-9), 1)
    data = {"name": "long", "steps": [{"id": i, "tool": "note"} for i in ids]}
    row["model_s"], _ = timed(Playbook.model_validate, data)
    row["deploy_s"], definitions = timed(load_definitions, root, TOOLS)
    assert len(definitions.playbooks["long"].steps) == count
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="500,1000,2000,4000",
                        help="numbers of chained steps, comma-separated")
    parser.add_argument("--old-max", type=int, default=2000,
                        help="skip the old sort above this many steps")
    parser.add_argument("--json", action="store_true",
                        help="end stdout with one JSON line of every figure")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        measure(10, 0, Path(folder))  # warm up: imports, the template environment
        for count in sizes:
            print(f"measuring {count} steps...", file=sys.stderr)
            rows.append(measure(count, args.old_max, Path(folder)))
    print(f"{'steps':>6} {'old order s':>12} {'order s':>10} {'old/new':>9} {'model s':>10} "
          f"{'deploy s':>10}")
    for row in rows:
        old = "skipped" if row["old_order_s"] is None else f"{row['old_order_s']:.3f}"
        ratio = "-" if row["speedup"] is None else f"{row['speedup']:.0f}x"
        print(f"{row['steps']:>6} {old:>12} {row['order_s']:>10.4f} {ratio:>9} "
              f"{row['model_s']:>10.3f} {row['deploy_s']:>10.3f}")
    if args.json:
        print(json.dumps({"sizes": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
