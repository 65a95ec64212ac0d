"""What ``soloist up`` says while it runs: one line per run started, gate waiting, run
finished or failed.

The lines come from the episodic log, read by a thread beside the worker, so the
orchestrator prints nothing itself and what is said is what was recorded (including what
other processes on the same store did).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from soloist.control.display import escape

if TYPE_CHECKING:
    from soloist.store.base import EventRow
    from soloist.workspace import Workspace


def _text(value: object) -> str:
    """Stored text on one line: a newline or an escape sequence in an input or an error
    cannot start a forged line."""
    return escape(str(value))


def narrate(event: EventRow) -> str | None:
    """The line a person reads for ``event``, or None for the events not worth a line."""
    data = event.data if isinstance(event.data, dict) else {}
    run = _text(event.run_id or "-")
    if event.kind == "run.created":
        return f"started   {run} {_text(data.get('playbook', ''))} v{data.get('version', '?')}"
    if event.kind == "approval.requested":
        approval = _text(data.get("approval", "?"))
        return (f"waiting   {run} at step {_text(event.step_id or '?')}: "
                f"soloist approve {approval}  (or: soloist reject {approval} --reason ...)")
    if event.kind == "run.done":
        return f"done      {run}"
    if event.kind in ("run.failed", "run.cancelled"):
        state = event.kind.removeprefix("run.")
        error = data.get("error")
        return f"{state:<9} {run}" + (f": {_text(error)}" if error else "")
    if event.kind == "run.compensating":
        return f"undoing   {run} (compensating what it dispatched)"
    return None


class Narrator:
    """Follows the log from its current head and prints a line for each event worth one."""

    def __init__(self, ws: Workspace, echo: Callable[[str], None],
                 poll_seconds: float = 0.5) -> None:
        self.ws = ws
        self.echo = echo
        self.poll_seconds = poll_seconds
        self.after = ws.log_head()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="narrator", daemon=True)

    def __enter__(self) -> Narrator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.drain()  # what happened in the last moments is said too

    def drain(self) -> None:
        while True:
            events = self.ws.log(after=self.after, limit=500)
            for event in events:
                line = narrate(event)
                if line is not None:
                    self.echo(line)
                self.after = event.seq
            if len(events) < 500:
                return

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.drain()
            except Exception:  # a busy or restarting store: say it next time round
                continue
