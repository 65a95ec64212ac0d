"""What `soloist up` says for each event, and how it finds the log's head."""

from __future__ import annotations

from soloist.interfaces.cli.progress import narrate
from soloist.store.base import EventRow


def event(kind: str, data: object, step: str | None = None) -> EventRow:
    return EventRow(seq=1, ts=0.0, kind=kind, run_id="r-1", step_id=step, actor="system",
                    data=data, prev_hash="", hash="")


def test_each_run_event_is_one_line_and_others_are_silent() -> None:
    assert narrate(event("run.created", {"playbook": "invoice", "version": 3})) == \
        "started   r-1 invoice v3"
    waiting = narrate(event("approval.requested", {"approval": "a-9"}, "send"))
    assert waiting is not None and "r-1 at step send: soloist approve a-9" in waiting
    assert narrate(event("run.done", {})) == "done      r-1"
    assert narrate(event("run.failed", {"error": "step x failed: no"})) == \
        "failed    r-1: step x failed: no"
    assert narrate(event("step.transition", {"to": "ready"})) is None


def test_stored_text_cannot_start_a_forged_line() -> None:
    line = narrate(event("run.failed", {"error": "bad\ndone      r-2\x1b[2K"}))
    assert line is not None and "\n" not in line and "\x1b" not in line
