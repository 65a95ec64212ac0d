"""A rate limit shared by four worker processes, as the SMTP relay sees it.

The mail connector allows 5 sends a second and at most 5 in any one second (``rate = 5``,
``burst = 5``). Four ``soloist worker`` processes, eight steps in flight each, send 110
emails through it. Over the 20 seconds after the first arrival the relay receives them at
5 a second (within 10%), and no second holds more than the burst. A second is measured
at the relay, after the send's own round trip: its windows are shortened by
:data:`JITTER` so that a send's latency (a few milliseconds either way) does not move one
message across a window's edge.

(A 429 storm from the billing server making steps wait rather than fail is shown in
tests/integration/test_billing_connector.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.smtp_server import SMTPTestServer
from support.workspaces import write_workspace

from soloist.orchestration.runs import StartRequest, start_run
from soloist.workspace import Workspace

SOLOIST = str(Path(sys.executable).with_name("soloist"))
RATE, BURST, WORKERS, SENDS, WINDOW = 5, 5, 4, 110, 20.0
JITTER = 0.03  # seconds: how far a send's latency may move its arrival

PLAYBOOK = """
name: notify
inputs: {type: object, properties: {n: {type: integer}}, required: [n]}
steps:
  - id: email
    tool: mail.send
    args:
      to: ["client{{ inputs.n }}@example.test"]
      subject: "Update {{ inputs.n }}"
      text: "Your project moved on."
"""


def most_in_one_second(times: list[float], width: float) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered[i:] if t < start + width)
               for i, start in enumerate(ordered))


@pytest.mark.slow
def test_four_workers_share_one_rate_limit_at_the_relay(tmp_path: Path, db_url: str) -> None:
    with SMTPTestServer(password="relay-password-1") as smtp:
        root = write_workspace(tmp_path / "ws", {"notify": PLAYBOOK}, toml=f"""
[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
smtp_security = "none"
username = "{smtp.user}"
password = "secret:MAIL_PASSWORD"
from_address = "office@example.test"
rate = {RATE}
burst = {BURST}
""")
        env = {**os.environ, "SOLOIST_DATABASE_URL": db_url, "SOLOIST_POLL_SECONDS": "0.05"}
        with Workspace(root, database_url=db_url) as ws:
            ws.secrets.set("MAIL_PASSWORD", smtp.password, "person:test")
            ws.deploy()
            playbook = ws.registry.latest_playbook("notify")
            with open(root / "workers.log", "ab") as log:
                workers = [subprocess.Popen(
                    [SOLOIST, "worker", "--concurrency", "8", "-w", str(root)], env=env,
                    stdout=subprocess.DEVNULL, stderr=log) for _ in range(WORKERS)]
            try:
                until = time.time() + 60
                while time.time() < until and sum(
                        ": ready," in line for line in
                        (root / "workers.log").read_text().splitlines()) < WORKERS:
                    time.sleep(0.05)
                with ws.store.transaction() as tx:
                    for n in range(SENDS):
                        start_run(tx, StartRequest(playbook, {"n": n}, {"test": "rate"}, "test"))
                smtp.wait_for_messages(SENDS, timeout=SENDS / RATE + 30)
            finally:
                for proc in workers:
                    proc.send_signal(signal.SIGTERM)
                codes = [proc.wait(60) for proc in workers]
            with ws.store.read() as tx:
                counts = tx.runs.count_by_state()
                attempts = {row.attempt for run in tx.runs.list(limit=1000)
                            for row in tx.steps.for_run(run.id)}
        arrivals = sorted(m.received_at for m in smtp.messages)
        assert codes == [0] * WORKERS
        assert counts == {"done": SENDS}
        assert attempts == {1}, "a wait for the limit is not an attempt"
        first = arrivals[0]
        within = [t for t in arrivals if first <= t < first + WINDOW]
        rate = len(within) / WINDOW
        assert abs(rate - RATE) <= 0.1 * RATE, (rate, len(within))
        assert most_in_one_second(arrivals, 1.0 - JITTER) <= BURST
        print(f"\nshared rate limit: {rate:.2f}/s at the relay over {WINDOW:g}s "
              f"(configured {RATE}/s), at most "
              f"{most_in_one_second(arrivals, 1.0 - JITTER)} in any second (burst {BURST})")
