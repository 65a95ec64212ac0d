"""Cron fires through the scheduler, gate timeouts, queue limits, step timeouts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from support.workspaces import write_workspace
from test_orchestration import assert_one_at_a_time

from soloist.workspace import Workspace

CRON = """
name: nightly
triggers:
  - cron: "0 2 * * *"
    timezone: UTC
    inputs: {fired: "{{ fire_time }}"}
steps:
  - {id: s, tool: sleep, args: {seconds: 0}}
"""


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_cron_fires_once_on_catch_up_not_a_burst(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"nightly": CRON})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        scheduler = ws.scheduler("s1")
        assert scheduler.tick(ts("2026-01-01T00:00:00"))["cron"] == 0  # starts counting
        assert scheduler.tick(ts("2026-01-01T01:59:00"))["cron"] == 0
        assert scheduler.tick(ts("2026-01-01T02:00:01"))["cron"] == 1
        assert scheduler.tick(ts("2026-01-01T02:05:00"))["cron"] == 0
        # Down for five nights: one catch-up run, for the latest missed fire.
        assert scheduler.tick(ts("2026-01-06T12:00:00"))["cron"] == 1
        assert scheduler.tick(ts("2026-01-06T12:00:01"))["cron"] == 0
        fired = sorted(r.inputs["fired"] for r in ws.runs(playbook="nightly"))
        assert fired == [ts("2026-01-01T02:00:00"), ts("2026-01-06T02:00:00")]
        # A second scheduler does nothing while the first one leads.
        assert ws.scheduler("s2").tick(ts("2026-01-07T03:00:00")) == {}


GATED = """
name: waits
steps:
  - id: ask
    tool: file.append
    args: {path: out.txt, line: sent}
    gate: {message: "ok?", timeout: 0.1s, default: approve}
  - id: ask-again
    gate: {message: "really?", timeout: 0.1s}
"""


def test_gate_timeout_applies_the_default_decision(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"waits": GATED})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("waits")
        ws.worker().run(until_idle=True)
        time.sleep(0.15)
        assert ws.scheduler("s").tick()["gates"] == 1  # approved by default
        ws.worker().run(until_idle=True)
        assert (root / "out.txt").read_text().count("sent") == 1
        time.sleep(0.15)
        assert ws.scheduler("s").tick()["gates"] == 1  # no default: rejected
        ws.worker().run(until_idle=True)  # file.append declares its undo: it is compensated
        assert (root / "out.txt").read_text().count("sent") == 0
        run = ws.get_run(run_id)
        assert run.state == "failed" and "timed out" in (run.error or "")
        decided = [a.decided_by for a in ws.show(run_id).approvals]
        assert decided == ["system:gate-timeout", "system:gate-timeout"]


SLEEPY = """
name: sleepy
queue: slow
steps:
  - {id: s, tool: sleep, args: {seconds: 0.05}}
"""


def test_queue_concurrency_limit(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"sleepy": SLEEPY},
                           toml="[queues.slow]\nconcurrency = 1\n")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ids = [ws.start("sleepy") for _ in range(4)]
        ws.worker(concurrency=4).run(until_idle=True)
        assert_one_at_a_time(ws, ids)


TIMEOUT = """
name: stuck
steps:
  - id: s
    tool: sleep
    args: {seconds: 2}
    timeout: 0.1s
    retry: {max_attempts: 2, backoff: 0.01, jitter: 0}
"""


def test_step_timeout_is_a_transient_failure(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"stuck": TIMEOUT})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("stuck")
        started = time.time()
        deadline = started + 10
        while ws.get_run(run_id).state == "running" and time.time() < deadline:
            ws.worker(concurrency=2).run(until_idle=True)
        run = ws.get_run(run_id)
        assert run.state == "failed" and "timed out" in (run.error or "")
        assert ws.show(run_id).steps[0].attempt == 2


PY_PLAYBOOK = '''
from soloist.control.playbooks import Playbook, Step

hello = Playbook(
    name="hello-py",
    steps=[Step(id="greet", tool="note", args={"text": "hello {{ inputs.who }}"})],
)
'''


def test_python_playbooks_deploy_and_run_like_yaml_ones(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"nightly": CRON})
    (root / "playbooks" / "hello.py").write_text(PY_PLAYBOOK)
    with Workspace(root, database_url=db_url) as ws:
        report = ws.deploy()
        assert ("playbook", "hello-py", 1) in report.deployed
        run_id = ws.start("hello-py", {"who": "ada"})
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert ws.show(run_id).steps[0].output["note"] == "hello ada"
        assert ws.deploy().deployed == []  # unchanged: no new version
        (root / "playbooks" / "hello.py").write_text(PY_PLAYBOOK.replace('id="greet"',
                                                                         'id="greet", pip=1'))
        import pytest

        from soloist.errors import DefinitionError

        with pytest.raises(DefinitionError, match=r"playbooks/hello.py:6:1: .*pip"):
            ws.deploy()
