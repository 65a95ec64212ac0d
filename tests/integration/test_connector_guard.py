"""The connector framework's guard, through real playbook runs in real workers, against a
real local HTTP server (tests/support/connectors.py), on SQLite and PostgreSQL.

A probe connector (the webhook kind's class, replaced for the test) posts to the server;
the server answers what the test scripts. What is asserted is what the server saw and
what the store says about each step: a wait spends no attempt, the breaker per connector
opens and lets steps wait rather than fail, the concurrency cap and the rate limit hold
across workers, and ``Workspace.connector_status`` shows all of it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.connectors import PROBE_KIND, ProbeServer, worker_environment
from support.workspaces import write_workspace

from soloist.control.buckets import capacity
from soloist.integrations import registry
from soloist.workspace import Workspace

SECRET = "probe-hook-secret-1"


def playbook(url: str, max_attempts: int) -> str:
    return f"""
name: probe
steps:
  - id: post
    tool: probe.post
    args: {{url: "{url}"}}
    retry: {{max_attempts: {max_attempts}, backoff: 0.05, jitter: 0}}
"""


def probe_toml(limits: str = "", breakers: str = "") -> str:
    return f'''[connectors.probe]
kind = "webhook"
secret = "secret:PROBE_SECRET"
timeout = "20s"
{limits}
{breakers}
'''


@pytest.fixture
def server() -> Iterator[ProbeServer]:
    with ProbeServer() as probe:
        yield probe


@pytest.fixture(autouse=True)
def probe_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.KINDS, "webhook", PROBE_KIND)


def open_ws(tmp_path: Path, db_url: str, server: ProbeServer, *, max_attempts: int = 1,
            toml: str = "") -> Workspace:
    root = write_workspace(tmp_path / "ws", {"probe": playbook(server.url, max_attempts)},
                           toml=toml or probe_toml())
    ws = Workspace(root, database_url=db_url)
    ws.secrets.set("PROBE_SECRET", SECRET, "person:tester")
    ws.deploy()
    return ws


def step_of(ws: Workspace, run_id: str) -> tuple[str, int]:
    step = ws.show(run_id).steps[0]
    return step.state, step.attempt


def in_thread(ws: Workspace) -> threading.Thread:
    thread = threading.Thread(target=ws.worker(4).run, kwargs={"until_idle": True},
                              daemon=True)
    thread.start()
    return thread


def test_a_429_makes_the_step_wait_without_spending_its_one_attempt(
        tmp_path: Path, db_url: str, server: ProbeServer) -> None:
    server.answer(429, 429, then=200)
    with open_ws(tmp_path, db_url, server, max_attempts=1) as ws:
        run_id = ws.start("probe")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert step_of(ws, run_id) == ("done", 1)
        assert [r.status for r in server.requests] == [429, 429, 200]
        # The same intent each time: one idempotency key, sent until it went through.
        assert len({r.key for r in server.requests}) == 1
        waits = [e for e in ws.log(run_id=run_id) if e.kind == "step.transition"
                 and (e.data or {}).get("waits")]
        assert len(waits) == 2 and "answered 429" in waits[0].data["error"]


def test_the_breaker_opens_and_its_steps_wait_until_the_server_is_back(
        tmp_path: Path, db_url: str, server: ProbeServer) -> None:
    """Two transient failures open connector probe's breaker ([breakers.probe]); from
    then on its steps wait (no attempt spent) instead of failing on their last attempt,
    and a probe after each cooldown finds the server failing, then back."""
    server.answer(then=503)
    toml = probe_toml(breakers='[breakers]\nfailure_threshold = 9\n'
                               '[breakers.probe]\nfailure_threshold = 2\ncooldown = 0.5\n')
    with open_ws(tmp_path, db_url, server, max_attempts=2, toml=toml) as ws:
        runs = [ws.start("probe") for _ in range(2)]
        worker = in_thread(ws)

        def reopened() -> bool:
            [status] = ws.connector_status("probe")
            # More failures than the two steps have attempts (2 x 2): probes after each
            # cooldown kept failing, and each opened the breaker again.
            return status.health == "open" and status.failures >= 5

        deadline = time.monotonic() + 60
        while not reopened():
            assert time.monotonic() < deadline, ws.connector_status("probe")
            time.sleep(0.05)
        [status] = ws.connector_status("probe")
        assert status.breaker_opened_at is not None
        for run_id in runs:  # waiting, not failed, with an attempt left or none
            state, attempt = step_of(ws, run_id)
            assert state in ("ready", "claimed", "executing", "persisting") and attempt <= 2
        assert len(server.requests) >= 5

        server.answer(then=200)
        worker.join(60)
        assert not worker.is_alive()
        for run_id in runs:
            assert ws.get_run(run_id).state == "done"
            assert step_of(ws, run_id)[1] <= 2
        # Each attempt after the breaker opened was a wait: never more calls than the
        # attempts allow plus one probe per cooldown, and no step failed for it.
        assert [r.status for r in server.requests].count(200) == 2
        [status] = ws.connector_status("probe")
        assert (status.health, status.failures) == ("ok", 0)


def test_the_concurrency_cap_holds_across_two_workers_on_two_connections(
        tmp_path: Path, db_url: str, server: ProbeServer) -> None:
    server.state.gate.clear()  # requests wait at the server until the test lets them go
    toml = probe_toml("concurrency = 2")
    with open_ws(tmp_path, db_url, server, toml=toml) as ws, \
            Workspace(ws.root, database_url=db_url) as other:
        runs = [ws.start("probe") for _ in range(8)]
        threads = [in_thread(ws), in_thread(other)]
        server.wait_for(lambda s: s.in_flight == 2)
        [status] = ws.connector_status("probe")
        assert (status.concurrency, status.in_flight) == (2, 2)
        server.state.hold = 0.05
        server.state.gate.set()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive()
        assert server.state.max_in_flight == 2
        assert len(server.requests) == 8
        for run_id in runs:  # a full cap is a wait, not an attempt
            assert ws.get_run(run_id).state == "done" and step_of(ws, run_id) == ("done", 1)
        [status] = ws.connector_status("probe")
        assert status.in_flight == 0


#: how far apart two requests' arrival at the server may drift from their turns
JITTER = 0.03


def test_the_rate_limit_is_shared_by_two_worker_processes(
        tmp_path: Path, db_url: str, server: ProbeServer) -> None:
    """rate = 4 with burst = 6 (at most 6 calls in any one second) over about 5 s, two
    worker processes: the server sees 4 a second (within 15%) after the first full
    bucket, and never more than 6 in a second. A window is shortened by JITTER at its end:
    turns exactly one second apart may reach the server a few ms early or late."""
    rate, burst = 4, 6
    toml = probe_toml(f"rate = {rate}\nburst = {burst}")
    size = int(capacity(rate, burst))  # 3: what a full bucket lets through at once
    count = size + 5 * rate
    with open_ws(tmp_path, db_url, server, toml=toml) as ws:
        processes = [subprocess.Popen(
            [sys.executable, "-m", "support.connectors", str(ws.root), db_url, "4"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=worker_environment()) for _ in range(2)]
        try:
            for process in processes:
                assert process.stdout is not None and process.stdout.readline() == "ready\n"
            runs = [ws.start("probe") for _ in range(count)]
            for process in processes:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            # While they work, the shared bucket is drained: turns are reserved ahead.
            deadline = time.monotonic() + 60
            while (tokens := ws.connector_status("probe")[0].tokens) is None \
                    or tokens >= size:
                assert time.monotonic() < deadline, "the bucket was never used"
                time.sleep(0.05)
            for process in processes:
                assert process.wait(120) == 0
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                for stream in (process.stdin, process.stdout):
                    if stream is not None:
                        stream.close()
        assert all(ws.get_run(r).state == "done" for r in runs)
        assert all(step_of(ws, r) == ("done", 1) for r in runs)
    arrivals = sorted(r.started for r in server.requests)
    assert len(arrivals) == count
    assert len({r.pid for r in server.requests}) == 2  # both processes called
    measured = (count - size) / (arrivals[-1] - arrivals[0])
    assert rate * 0.85 <= measured <= rate * 1.15, measured
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1 - JITTER)
                  for start in arrivals)
    assert busiest <= burst, arrivals
