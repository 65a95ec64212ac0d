"""``code.run``: Python or shell written by an agent, run in the bubblewrap sandbox.

Its effect is ``read``: the code sees no network, no workspace and no secrets, and can write
only its own scratch folder (all it writes counted in one cap), which is gone when the run
ends; so running it again is safe. What the sandbox allows and refuses, syscalls included,
is in :mod:`soloist.execution.sandbox` and the README.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from soloist.errors import DeterministicError
from soloist.execution.context import ToolCall
from soloist.execution.sandbox import LANGUAGES, BubblewrapSandbox, Limits
from soloist.execution.tools.base import tool

MAX_TIMEOUT = 600.0


@tool("code.run", effect="read", tags=("code",))
def code_run(language: str, code: str, call: ToolCall, timeout: float = 30) -> dict[str, Any]:
    """Run ``code`` (``python`` or ``shell``) in a sandbox with no network, no workspace,
    a read-only system, a size-capped scratch folder as cwd (the only writable place), a
    syscall filter, and CPU, memory, process, output and ``timeout`` (wall clock, seconds)
    limits. Returns exit_code, stdout, stderr, truncated,
    timed_out, killed (the limit it ran into, if any) and duration_s."""
    del call  # the sandbox is the same for every run; nothing to key on
    if language not in LANGUAGES:
        raise DeterministicError(
            f"code.run language must be one of {', '.join(LANGUAGES)}, not {language!r}"
        )
    if not isinstance(code, str):
        raise DeterministicError("code.run code must be a string")
    try:
        wall = float(timeout)
    except (TypeError, ValueError):
        raise DeterministicError(f"code.run timeout must be a number, not {timeout!r}") from None
    if not 0 < wall <= MAX_TIMEOUT:
        raise DeterministicError(f"code.run timeout must be in (0, {MAX_TIMEOUT:g}] seconds")
    # Limits() defaults for everything but the wall clock; CPU time never exceeds it anyway.
    limits = Limits(wall_seconds=wall)
    result = BubblewrapSandbox().run(language, code, limits=limits)
    return asdict(result)
