"""Running a workspace's runs to their end inside a test."""

from __future__ import annotations

import time

from soloist.workspace import Workspace


def drain(ws: Workspace, run_id: str, expect: str = "done", *,
          until: tuple[str, ...] = ("done", "failed")) -> str:
    """Work until the run settles (a step that waits is ready again a moment later), and
    fail the test unless it ends ``expect``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ws.worker().run(until_idle=True)
        run = ws.get_run(run_id)
        if run.state in until:
            if run.state != expect:
                raise AssertionError(f"run {run_id} is {run.state}: {run.error}")
            return run.state
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} is still {ws.get_run(run_id).state}")
