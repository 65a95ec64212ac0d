"""`soloist worker` processes for crash tests: started with their stderr in one log, and
known ready once they said so (before that, SIGTERM is Python's default and kills)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOLOIST = str(Path(sys.executable).with_name("soloist"))


def start_worker(root: Path, env: dict[str, str], concurrency: int = 4
                 ) -> subprocess.Popen[bytes]:
    """A worker on the workspace at ``root``; its stderr goes to ``root/workers.log``."""
    with open(root / "workers.log", "ab") as log:
        return subprocess.Popen([SOLOIST, "worker", "--concurrency", str(concurrency),
                                 "-w", str(root)], env=env, stdout=subprocess.DEVNULL,
                                stderr=log)


def ready(root: Path, worker: subprocess.Popen[bytes]) -> bool:
    """Whether ``worker`` said it is ready (its id, host:pid:tag, names its pid)."""
    return any(f":{worker.pid}:" in line and ": ready," in line
               for line in (root / "workers.log").read_text().splitlines())
