"""One Soloist worker process for the multi-process benchmark (run by ``orchestrator.py``).

    python bench/worker_proc.py WORKSPACE DATABASE_URL CONCURRENCY

It opens the workspace, prints ``ready`` and waits for a line on stdin, so that the
parent can start the clock once every process has paid for its imports and connections;
then it drains with ``run(until_idle=True)`` and prints a JSON summary.
"""

from __future__ import annotations

import json
import sys
import time

from soloist.workspace import Workspace


def main() -> None:
    root, url, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ws = Workspace(root, database_url=url)
    worker = ws.worker(concurrency=concurrency)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    worker.run(until_idle=True)
    elapsed = time.perf_counter() - t0
    ws.close()
    print(json.dumps({"completed": worker.completed, "refused": worker.refused,
                      "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    main()
