"""``soloist connectors [test | sync]`` through the real binary, against the real SMTP and
IMAP test servers: the listing reads the shared state from the store (health, bucket,
slots, cursors, backlog), a failed round trip is one sentence and exit code 1, and so is a
connector soloist.toml does not name."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.connectors import worker_environment
from support.imap_server import IMAPTestServer
from support.smtp_server import SMTPTestServer
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

from soloist.store.base import BreakerRow
from soloist.workspace import Workspace

USER, PASSWORD = "ada@example.test", "ada-mail-password"
PLAIN = """
name: plain
steps:
  - {id: a, tool: note, args: {text: "hello"}}
"""


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer(user=USER, password=PASSWORD) as server:
        yield server


@pytest.fixture
def imap_server() -> Iterator[IMAPTestServer]:
    with IMAPTestServer(user=USER, password=PASSWORD) as server:
        yield server


def mail_toml(smtp: SMTPTestServer, imap: IMAPTestServer) -> str:
    return f'''[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
smtp_security = "none"
imap_host = "127.0.0.1"
imap_port = {imap.port}
imap_security = "none"
username = "{USER}"
password = "secret:MAIL_PASSWORD"
from_address = "ada@example.com"
rate = 5
burst = 10
concurrency = 2
backlog = 50

[connectors.forms]
kind = "webhook"
secret = "secret:FORMS_SECRET"
'''


def set_secret(root: Path, name: str, value: str) -> None:
    subprocess.run([SOLOIST, "secret", "set", name, "-w", str(root)], input=value + "\n",
                   text=True, capture_output=True, check=True, timeout=120,
                   env={**os.environ, "SOLOIST_ACTOR": "tester"})


@pytest.fixture
def root(tmp_path: Path, smtp_server: SMTPTestServer, imap_server: IMAPTestServer) -> Path:
    return write_workspace(tmp_path / "ws", {"plain": PLAIN},
                           toml=mail_toml(smtp_server, imap_server))


def test_connectors_lists_each_connector_healthy(root: Path) -> None:
    listed = json.loads(soloist("connectors", "--json", "-w", str(root)).stdout)
    assert listed == [
        {"name": "forms", "kind": "webhook", "health": "ok", "failures": 0,
         "breaker_opened_at": None, "bucket": None, "concurrency": None, "cursors": {},
         "backlog": {}, "backlog_limit": 1000},
        {"name": "mail", "kind": "email", "health": "ok", "failures": 0,
         "breaker_opened_at": None, "bucket": {"rate": 5.0, "burst": 10, "tokens": None},
         "concurrency": {"cap": 2, "in_flight": 0}, "cursors": {}, "backlog": {},
         "backlog_limit": 50},
    ]
    table = soloist("connectors", "-w", str(root), env={"COLUMNS": "200"}).stdout
    [mail] = [line for line in table.splitlines() if " mail " in line]
    assert re.search(r"mail\s+│\s+email\s+│\s+ok\s+│\s+5/s, burst 10, full\s+│\s+0/2\s+│"
                     r"\s+-\s+│\s+0/50", mail), table


def test_connectors_shows_what_the_workers_share_through_the_store(root: Path) -> None:
    """An open breaker, a half-used bucket, a call in flight, a cursor and a waiting
    event, written to the store as a worker and the poller would, are what the listing
    shows."""
    from soloist.control.buckets import acquire_slot, book_turn

    with Workspace(root) as ws:
        now = time.time()
        with ws.store.transaction() as tx:
            tx.breakers.put(BreakerRow("connector:mail", "open", 5, now, now))
            for n in range(3):
                book_turn(tx, "mail", f"r-1/send/{n}", 5, 10, 2.0)
            acquire_slot(tx, "mail", "r-1/send/0", 2, 60)
            tx.cursors.put("mail", "INBOX", {"uidvalidity": 7, "uid": 42}, None)
            tx.inbound.accept("mail:INBOX", "7:42", {"topic": "email.received",
                                                     "payload": {"uid": 42}}, 50)
    [mail] = [row for row in json.loads(
        soloist("connectors", "--json", "-w", str(root)).stdout) if row["name"] == "mail"]
    assert (mail["health"], mail["failures"]) == ("open", 5)
    assert mail["breaker_opened_at"] == pytest.approx(now, abs=1)
    # 3 of the bucket's 6 (burst 10 - rate 5 + 1) taken, refilling at 5 a second since
    assert 2.9 <= mail["bucket"]["tokens"] <= 6.0
    assert mail["concurrency"] == {"cap": 2, "in_flight": 1}
    assert mail["cursors"] == {"INBOX": {"uidvalidity": 7, "uid": 42}}
    assert mail["backlog"] == {"INBOX": 1}
    table = soloist("connectors", "-w", str(root), env={"COLUMNS": "200"}).stdout
    assert re.search(r"open \(5 failed\).*1/2.*INBOX: \{\"uidvalidity\":.*INBOX: 1/50",
                     table), table


@pytest.mark.parametrize("command", ["test", "sync"])
def test_an_unknown_connector_is_one_sentence_and_exit_1(root: Path, command: str) -> None:
    result = soloist("connectors", command, "nope", "-w", str(root), check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "error: no connector named 'nope' in soloist.toml (known: forms, mail)\n")


def test_connectors_test_says_what_is_wrong_with_the_login(
        root: Path, smtp_server: SMTPTestServer, imap_server: IMAPTestServer) -> None:
    set_secret(root, "MAIL_PASSWORD", "wrong-password-1")
    refused = soloist("connectors", "test", "mail", "-w", str(root), check=False)
    ports = f"({smtp_server.port}|{imap_server.port})"
    assert refused.returncode == 1, refused
    assert re.fullmatch(f"error: cannot log in to 127\\.0\\.0\\.1:{ports} as "
                        f"{re.escape(USER)}: authentication failed\n", refused.stderr), refused
    assert "Traceback" not in refused.stdout + refused.stderr
    as_json = soloist("connectors", "test", "mail", "--json", "-w", str(root), check=False)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["ok"] is False

    set_secret(root, "MAIL_PASSWORD", PASSWORD)
    checked = soloist("connectors", "test", "mail", "-w", str(root))
    assert checked.stdout.startswith("mail: ") and checked.stderr == ""
    assert json.loads(soloist("connectors", "test", "mail", "--json", "-w", str(root)
                              ).stdout)["ok"] is True


def test_connectors_help_names_the_commands() -> None:
    shown = soloist("connectors", "--help", env={"COLUMNS": "200"}).stdout
    assert "test" in shown and "sync" in shown and "half_open" in shown


def probe_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``soloist ARGS`` in a process whose webhook kind is a probe with a source
    (tests/support/connectors.py), through the CLI's own entry point."""
    return subprocess.run([sys.executable, "-m", "support.connectors", "cli", *args,
                           "-w", str(root)], capture_output=True, text=True, timeout=120,
                          env=worker_environment(), check=False)


@pytest.fixture
def probe_root(tmp_path: Path) -> Path:
    root = write_workspace(tmp_path / "probe", {"plain": PLAIN}, toml=(
        '[connectors.probe]\nkind = "webhook"\nsecret = "secret:PROBE_SECRET"\n'
        'backlog = 2\n'))
    set_secret(root, "PROBE_SECRET", "probe-hook-secret-1")
    return root


def test_connectors_sync_polls_into_the_backlog_now(probe_root: Path) -> None:
    first = probe_cli(probe_root, "connectors", "sync", "probe")
    assert (first.returncode, first.stdout, first.stderr) == (
        0, "probe:list: 2 new, 0 already received; more waiting\n", "")
    full = probe_cli(probe_root, "connectors", "sync", "probe", "--json")
    assert full.returncode == 0
    assert json.loads(full.stdout) == [{"source": "probe:list", "accepted": 0,
                                        "duplicates": 0, "paused": True, "more": False,
                                        "error": None}]
    [row] = json.loads(probe_cli(probe_root, "connectors", "--json").stdout)
    assert (row["cursors"], row["backlog"], row["backlog_limit"]) == (
        {"list": 2}, {"list": 2}, 2)
    paused = probe_cli(probe_root, "connectors", "sync", "probe")
    assert paused.stdout == "probe:list: paused, its backlog is full (nothing read)\n"


def test_a_failed_round_trip_is_its_sentence_and_exit_1(probe_root: Path) -> None:
    failed = probe_cli(probe_root, "connectors", "test", "probe")
    assert (failed.returncode, failed.stdout, failed.stderr) == (
        1, "", "error: cannot log in to 127.0.0.1:1 as probe: authentication failed\n")
    as_json = probe_cli(probe_root, "connectors", "test", "probe", "--json")
    assert as_json.returncode == 1 and as_json.stderr == ""
    assert json.loads(as_json.stdout) == {
        "name": "probe", "ok": False,
        "error": "cannot log in to 127.0.0.1:1 as probe: authentication failed"}
