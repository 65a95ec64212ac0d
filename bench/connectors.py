"""Connector benchmark: the email connector against raw protocol clients, and the shared
rate limiter's accuracy.

    python bench/connectors.py [--sends N] [--messages M] [--limiter-seconds S] [--json]

Everything runs against real local servers started here (tests/support harnesses, each in
a process of its own: aiosmtpd, pymap) on 127.0.0.1, and a SQLite store in a temporary
folder:

1. ``raw_smtp_sends_per_s``: ``smtplib``, one message per connection (connect, log in,
   MAIL, RCPT, DATA, QUIT), one after the other (``raw_smtp_sends_per_s_8_threads``: the
   same by 8 threads); each message an ``EmailMessage`` given to ``send_message``, as a
   user of ``smtplib`` writes it;
2. ``smtp_sends_per_s``: the same messages as N runs of a one-step playbook whose step is
   ``mail.send``, drained by one ``soloist worker`` process at its default concurrency (8,
   ``--concurrency``), with the full bookkeeping: the step claimed, executed, its intent
   staged and persisted, ``transmitting`` written before DATA, the result and the dispatch
   ledger after the ``250``, the step closed; each send opens its own connection, as the
   raw loop does (the connector writes such a plain message's bytes itself: see
   ``compose.render``). The connector has no IMAP account here (no Sent copy), as the raw loop
   makes none. ``send_ratio`` is the quotient with the raw loop;
   ``smtp_sends_per_s_one_at_a_time`` (concurrency 1) and ``send_ratio_vs_8_threads`` put
   it beside the other two ways of counting;
3. ``raw_imap_msgs_per_s``: ``imapclient``: log in, select INBOX, UID FETCH of the full
   messages of M delivered ones, in batches of 100;
4. ``imap_msgs_per_s``: the connector's INBOX source (``read_existing = true``) polled by
   ``Workspace.sync_connector`` until the M messages are parsed and stored as events in the
   inbound backlog (each by its delivery id, the cursor moved in the same transaction);
   ``ingest_ratio`` is the quotient;
5. ``rate_limit_error``: 4 processes, 4 threads each, take turns of one connector's shared
   bucket (``Guard.take_turn``, rate 40/s, burst 40) as fast as they can for S seconds
   (default 30); measured turns/s over configured, minus one (0.01 = 1% fast).

Progress goes to stderr, a table to stdout; with ``--json`` the last line of stdout is one
JSON object with every figure and its goal.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

GOALS = {"send_ratio": 0.7, "ingest_ratio": 0.5, "rate_limit_error": 0.05}
USER, PASSWORD = "sender@example.test", "bench-password-1"
SENDER = "office@example.test"
LIMIT_RATE = 40.0

SERVE_SMTP = """
import sys, time
from pathlib import Path
from support.smtp_server import SMTPTestServer
with SMTPTestServer(folder=Path(sys.argv[1]), password=sys.argv[2]) as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""

PLAYBOOK = """
name: notify
inputs: {type: object, properties: {n: {type: integer}}, required: [n]}
steps:
  - id: email
    tool: mail.send
    args:
      to: ["client{{ inputs.n }}@example.test"]
      subject: "Update {{ inputs.n }}"
      text: "Your project moved on. This line makes the body a little longer."
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = SENDER, f"client{n}@example.test"
    msg["Subject"] = f"Update {n}"
    msg["Message-ID"] = f"<raw.{n}@example.test>"
    msg.set_content("Your project moved on. This line makes the body a little longer.")
    return msg


class SMTPServerProcess:
    """The SMTP harness in a process of its own, so it does not share our GIL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT / 'src'}"}
        self.process = subprocess.Popen([sys.executable, "-c", SERVE_SMTP, str(folder), PASSWORD],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def count(self) -> int:
        return len(list(self.folder.glob("*.eml")))

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def raw_smtp(port: int, n: int, threads: int = 1) -> float:
    """``n`` sends, one message per connection, by ``threads`` threads."""
    import threading

    def send(numbers: range) -> None:
        for i in numbers:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.login(USER, PASSWORD)
                smtp.send_message(message(i))

    pool = [threading.Thread(target=send, args=(range(t, n, threads),))
            for t in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return n / (time.perf_counter() - started)


def workspace(root: Path, toml: str) -> Any:
    from support.workspaces import write_workspace

    from soloist.workspace import Workspace

    write_workspace(root, {"notify": PLAYBOOK}, toml=toml)
    ws = Workspace(root)
    ws.secrets.set("MAIL_PASSWORD", PASSWORD, "person:bench")
    ws.deploy()
    return ws


def connector_smtp(base: Path, port: int, n: int, concurrency: int, label: str) -> float:
    from soloist.orchestration.runs import StartRequest, start_run

    root = base / f"send-ws-{label}"
    ws = workspace(root, f"""
[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "none"
username = "{USER}"
password = "secret:MAIL_PASSWORD"
from_address = "{SENDER}"
""")
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SOLOIST_POLL_SECONDS": "0.02"}
        stderr = open(root / "worker.log", "wb")
        worker = subprocess.Popen([str(Path(sys.executable).with_name("soloist")),
                                   "worker", "--concurrency", str(concurrency), "-w", str(root)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            until = time.time() + 60
            while ": ready," not in (root / "worker.log").read_text() and time.time() < until:
                time.sleep(0.05)
            playbook = ws.registry.latest_playbook("notify")
            started = time.perf_counter()
            with ws.store.transaction() as tx:
                for i in range(n):
                    start_run(tx, StartRequest(playbook, {"n": i}, {"bench": True}, "bench"))
            while True:
                with ws.store.read() as tx:
                    counts = tx.runs.count_by_state()
                if counts.get("done", 0) + counts.get("failed", 0) >= n:
                    break
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
            stderr.close()
        if counts.get("done", 0) != n:
            raise SystemExit(f"connector sends: {counts} (see {root / 'worker.log'})")
        return n / elapsed
    finally:
        ws.close()


def fill_mailbox(imap: Any, m: int) -> None:
    with imap.client() as client:
        for i in range(m):
            client.append("INBOX", message(i).as_bytes())


def raw_imap(imap: Any, m: int) -> float:
    from imapclient import IMAPClient

    started = time.perf_counter()
    fetched = 0
    with IMAPClient("127.0.0.1", imap.port, ssl=False, timeout=30) as client:
        client.login(imap.user, imap.password)
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        for i in range(0, len(uids), 100):
            fetched += len(client.fetch(uids[i:i + 100], ["RFC822"]))
    assert fetched == m, fetched
    return m / (time.perf_counter() - started)


def connector_imap(base: Path, imap: Any, m: int) -> float:
    ws = workspace(base / "ingest-ws", f"""
[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = 25
smtp_security = "none"
imap_host = "127.0.0.1"
imap_port = {imap.port}
imap_security = "none"
username = "{imap.user}"
password = "secret:MAIL_PASSWORD"
from_address = "{SENDER}"
read_existing = true
backlog = {m + 10}
""")
    ws.secrets.set("MAIL_PASSWORD", imap.password, "person:bench")
    try:
        started = time.perf_counter()
        stored = 0
        while stored < m:
            reports = ws.sync_connector("mail")
            got = sum(r.accepted for r in reports)
            errors = [r.error for r in reports if r.error]
            if errors:
                raise SystemExit(f"ingest failed: {errors[0]}")
            if not got and not any(r.more for r in reports):
                break
            stored += got
        elapsed = time.perf_counter() - started
        if stored != m:
            raise SystemExit(f"ingest stored {stored} of {m} messages")
        return m / elapsed
    finally:
        ws.close()


def _limiter_process(url: str, seconds: float, threads: int, start_at: float,
                     out: Any) -> None:
    import threading

    from soloist.config.connectors import WebhookConnector
    from soloist.control.breakers import BreakerPolicy
    from soloist.errors import Throttled
    from soloist.integrations.guard import Guard
    from soloist.store import open_store

    store = open_store(url)
    section = WebhookConnector(kind="webhook", secret="secret:X", rate=LIMIT_RATE,
                               burst=int(LIMIT_RATE))
    guard = Guard(store, "limited", section, BreakerPolicy())
    turns: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < start_at + seconds:
            try:
                guard.take_turn(f"bench-{os.getpid()}-{threading.get_ident()}-{time.time()}")
            except Throttled as wait:
                time.sleep(wait.retry_after or 0.01)
                continue
            with lock:
                turns.append(time.time())

    pool = [threading.Thread(target=take) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    store.close()
    out.put(turns)


def limiter_error(base: Path, seconds: float) -> tuple[float, float]:
    from soloist.store import open_store

    url = f"sqlite:///{base / 'limiter.db'}"
    open_store(url).close()  # migrated once, before the processes race for it
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3.0
    procs = [context.Process(target=_limiter_process, args=(url, seconds, 4, start_at, out))
             for _ in range(4)]
    for proc in procs:
        proc.start()
    turns = [t for _ in procs for t in out.get(timeout=seconds + 120)]
    for proc in procs:
        proc.join(30)
    # Turns are granted up to the horizon ahead: count those that fell inside the window.
    inside = [t for t in turns if start_at <= t < start_at + seconds]
    measured = len(inside) / seconds
    return measured, measured / LIMIT_RATE - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--limiter-seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="the worker's (default 8, as `soloist worker`'s default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.pop("SOLOIST_DATABASE_URL", None)
    from support.imap_server import IMAPTestServer

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="soloist-bench-connectors-") as tmp:
        base = Path(tmp)
        smtp = SMTPServerProcess(base / "relay")
        try:
            log(f"raw smtplib: {args.sends} sends, one at a time, then by 8 threads")
            figures["raw_smtp_sends_per_s"] = raw_smtp(smtp.port, args.sends)
            figures["raw_smtp_sends_per_s_8_threads"] = raw_smtp(smtp.port, args.sends, 8)
            log(f"connector: {args.sends} runs through mail.send, one worker "
                f"(concurrency {args.concurrency}), then one at a time")
            figures["smtp_sends_per_s"] = connector_smtp(base, smtp.port, args.sends,
                                                         args.concurrency, "default")
            figures["smtp_sends_per_s_one_at_a_time"] = connector_smtp(
                base, smtp.port, args.sends, 1, "serial")
            assert smtp.count() == 4 * args.sends, smtp.count()
        finally:
            smtp.stop()
        with IMAPTestServer(user=USER, password=PASSWORD) as imap:
            log(f"filling INBOX with {args.messages} messages")
            fill_mailbox(imap, args.messages)
            log("raw imapclient fetch")
            figures["raw_imap_msgs_per_s"] = raw_imap(imap, args.messages)
            log("connector ingest")
            figures["imap_msgs_per_s"] = connector_imap(base, imap, args.messages)
        log(f"shared rate limiter: 4 processes x 4 threads for {args.limiter_seconds:g}s")
        measured, error = limiter_error(base, args.limiter_seconds)
    figures["send_ratio"] = figures["smtp_sends_per_s"] / figures["raw_smtp_sends_per_s"]
    figures["send_ratio_one_at_a_time"] = (figures["smtp_sends_per_s_one_at_a_time"]
                                           / figures["raw_smtp_sends_per_s"])
    figures["send_ratio_vs_8_threads"] = (figures["smtp_sends_per_s"]
                                          / figures["raw_smtp_sends_per_s_8_threads"])
    figures["ingest_ratio"] = figures["imap_msgs_per_s"] / figures["raw_imap_msgs_per_s"]
    figures["rate_limit_configured_per_s"] = LIMIT_RATE
    figures["rate_limit_measured_per_s"] = measured
    figures["rate_limit_error"] = error
    figures["sends"], figures["messages"] = args.sends, args.messages
    figures["worker_concurrency"] = args.concurrency
    figures["goals"] = GOALS
    rows = [
        (f"email sends/s, 1 worker (concurrency {args.concurrency})",
         figures["smtp_sends_per_s"], figures["raw_smtp_sends_per_s"], figures["send_ratio"],
         f">= {GOALS['send_ratio']}"),
        ("  the same, one send at a time", figures["smtp_sends_per_s_one_at_a_time"],
         figures["raw_smtp_sends_per_s"], figures["send_ratio_one_at_a_time"], ""),
        ("  beside raw smtplib with 8 threads", figures["smtp_sends_per_s"],
         figures["raw_smtp_sends_per_s_8_threads"], figures["send_ratio_vs_8_threads"], ""),
        ("IMAP messages/s into events", figures["imap_msgs_per_s"],
         figures["raw_imap_msgs_per_s"], figures["ingest_ratio"],
         f">= {GOALS['ingest_ratio']}"),
    ]
    print(f"{'figure':40} {'soloist':>10} {'raw':>10} {'ratio':>7}  goal")
    for name, ours, raw, ratio, goal in rows:
        print(f"{name:40} {ours:10.1f} {raw:10.1f} {ratio:7.2f}  {goal}")
    print(f"{'shared rate limit, 4 processes':40} {measured:10.2f} {LIMIT_RATE:10.1f} "
          f"{measured / LIMIT_RATE:7.3f}  error {error:+.3f} (goal within "
          f"{GOALS['rate_limit_error']:.0%})")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
