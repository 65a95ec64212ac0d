"""One Soloist worker process for the multi-process benchmark (run by ``orchestrator.py``).

    python bench/worker_proc.py WORKSPACE DATABASE_URL CONCURRENCY

It opens the workspace, prints ``ready`` and waits for a line on stdin, so that the
parent can start the clock once every process has paid for its imports and connections;
then it works (``run()``, not ``until_idle``: a process that found nothing ready for a
moment must not leave while the others still make steps ready) until a second line (or
end of file) on stdin stops it, and prints a JSON summary.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from soloist.workspace import Workspace


def main() -> None:
    root, url, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ws = Workspace(root, database_url=url)
    worker = ws.worker(concurrency=concurrency)
    print("ready", flush=True)
    sys.stdin.readline()
    def stop_on_line() -> None:
        sys.stdin.readline()  # "stop", or end of file if the parent went away
        worker.stop()

    stopper = threading.Thread(target=stop_on_line, daemon=True)
    stopper.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    worker.run()
    cpu = time.process_time() - cpu0
    elapsed = time.perf_counter() - t0
    ws.close()
    print(json.dumps({"completed": worker.completed, "refused": worker.refused,
                      "seconds": elapsed,
                      "cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    main()
