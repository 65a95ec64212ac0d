"""Running the real ``soloist`` binary from tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SOLOIST = str(Path(sys.executable).with_name("soloist"))


def soloist(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = True, input_text: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "SOLOIST_ACTOR": "tester", **(env or {})}
    result = subprocess.run([SOLOIST, *args], cwd=cwd, env=full_env, capture_output=True,
                            text=True, timeout=120, input=input_text)
    if check and result.returncode != 0:
        raise AssertionError(f"soloist {' '.join(args)} failed:\n{result.stdout}\n"
                             f"{result.stderr}")
    return result
