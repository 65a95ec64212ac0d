"""`soloist worker` processes for crash tests: started with their stderr in one log, and
known ready once they said so (before that, SIGTERM is Python's default and kills)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soloist.store.base import EventRow
    from soloist.workspace import Workspace

SOLOIST = str(Path(sys.executable).with_name("soloist"))


def start_worker(root: Path, env: dict[str, str], concurrency: int = 4,
                 prefix: Sequence[str] = (), command: str = "worker"
                 ) -> subprocess.Popen[bytes]:
    """A worker (or ``soloist up --no-web``, with ``command="up"``) on the workspace at
    ``root``, run under ``prefix`` (``faketime ...``, ``ip netns exec ...``) if given;
    its stderr goes to ``root/workers.log``."""
    args = ["--no-web", "-q"] if command == "up" else []
    with open(root / "workers.log", "ab") as log:
        return subprocess.Popen([*prefix, SOLOIST, command, *args, "--concurrency",
                                 str(concurrency), "-w", str(root)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)


def ready(root: Path, worker: subprocess.Popen[bytes]) -> bool:
    """Whether ``worker`` said it is ready (its id, host:pid:tag, names its pid)."""
    return any(f":{worker.pid}:" in line and ": ready," in line
               for line in (root / "workers.log").read_text().splitlines())


def stop_workers(root: Path, procs: Sequence[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM each once it said it is ready (before, SIGTERM is Python's default and
    kills; ``soloist up`` says nothing, so give it time first); their exit codes, a
    process that does not stop within a minute killed."""
    by = time.time() + 60
    while not all(ready(root, p) or p.poll() is not None for p in procs) \
            and time.time() < by:
        time.sleep(0.05)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(60))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


@contextmanager
def started_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put started processes in; whatever still runs at the end is killed (a
    frozen one is continued first, to be killed)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def wait_for(what: str, check: Callable[[], object], seconds: float,
             log: Path | None = None) -> None:
    """Until ``check()`` is true; else fail naming ``what``, with the end of ``log``."""
    by = time.time() + seconds
    while time.time() < by:
        if check():
            return
        time.sleep(0.1)
    text = log.read_text() if log is not None and log.exists() else ""
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s; log:\n{text[-4000:]}")


def refused_writes(ws: Workspace, marker: str) -> list[EventRow]:
    """The ``lease.refused`` events of the worker whose id contains ``marker``."""
    return [e for e in ws.log(limit=1_000_000) if e.kind == "lease.refused"
            and marker in str(e.data.get("worker"))]


def done_runs(ws: Workspace) -> int:
    with ws.store.read() as tx:
        return tx.runs.count_by_state().get("done", 0)
