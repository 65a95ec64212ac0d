"""`soloist worker` processes for crash tests: started with their stderr in one log, and
known ready once they said so (before that, SIGTERM is Python's default and kills)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

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
