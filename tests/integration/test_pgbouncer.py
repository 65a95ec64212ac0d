"""PostgreSQL through PgBouncer in transaction pooling, the way 1,000 workers share a server.

What goes through the pooler: every transaction (claims, commits, reads, migrations,
NOTIFY). What cannot: a session's own state, since the pooler lends a server session to
another client after each transaction: the wake-up LISTEN, the scheduler's session lock,
and prepared statements. ``database.direct_url`` names the server for the first two, and
with it the store prepares nothing through the pooler (docs/scaling.md).

PgBouncer is Debian's ``/usr/sbin/pgbouncer``; the tests skip, saying so, without it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.postgres import HOST, SUPERUSER, EmbeddedPostgres
from support.workspaces import write_workspace

from soloist.store import open_store
from soloist.workspace import Workspace

pytestmark = pytest.mark.postgres

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

CHAIN = """
name: chain
steps:
  - {id: a, tool: note, args: {text: "a {{ inputs.n }}"}}
  - {id: b, tool: note, args: {text: "b {{ inputs.n }}"}}
  - {id: c, tool: note, args: {text: "c {{ inputs.n }}"}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited ({proc.returncode}): {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {HOST}:{port}: {log.read_text()}")


Bouncer = Callable[[str, int], str]


@pytest.fixture
def bouncer(pg_server: EmbeddedPostgres) -> Iterator[Bouncer]:
    """Starts PgBouncer (transaction pooling) in front of ``pg_server``: given a database
    URL and a pool size, returns the same database's URL through the pooler."""
    if not Path(PGBOUNCER).is_file():
        pytest.skip(f"PgBouncer is not installed ({PGBOUNCER}; Debian: apt-get install "
                    "pgbouncer)")
    procs: list[subprocess.Popen[bytes]] = []
    folders: list[Path] = []
    # PgBouncer refuses to run as root: as root, it runs as the server's own account.
    account = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def start(url: str, pool_size: int) -> str:
        dbname = url.rsplit("/", 1)[1]
        folder = Path(tempfile.mkdtemp(prefix="soloist-pgbouncer-"))
        folders.append(folder)
        port = _free_port()
        (folder / "users.txt").write_text(f'"{SUPERUSER}" ""\n')
        log = folder / "pgbouncer.log"
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{dbname} = host={HOST} port={pg_server.port} dbname={dbname} "
            f"pool_size={pool_size}\n"
            "[pgbouncer]\n"
            f"listen_addr = {HOST}\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 200\n"
            f"logfile = {log}\npidfile = {folder / 'pgbouncer.pid'}\n"
            "ignore_startup_parameters = extra_float_digits,options\n")
        if account is not None:
            os.chmod(folder, 0o755)
            for path in folder.iterdir():
                os.chown(path, account.pw_uid, account.pw_gid)
            os.chown(folder, account.pw_uid, account.pw_gid)
        proc = subprocess.Popen(
            [PGBOUNCER, str(folder / "pgbouncer.ini")], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            **({"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
               if account is not None else {}))
        procs.append(proc)
        _wait_for_port(port, proc, log)
        return f"postgresql://{SUPERUSER}@{HOST}:{port}/{dbname}"

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _workspace(tmp_path: Path, pooled: str, direct: str | None) -> Path:
    toml = f'[database]\nurl = "{pooled}"\n'
    if direct is not None:
        toml += f'direct_url = "{direct}"\n'
    return write_workspace(tmp_path / "ws", {"chain": CHAIN}, toml=toml)


def test_runs_finish_through_the_pooler(tmp_path: Path, pg_url: str,
                                        bouncer: Bouncer) -> None:
    """Four server sessions behind the pooler serve a worker of eight threads, a producer
    and the wake-ups: every run finishes, and the log still verifies."""
    pooled = bouncer(pg_url, 4)
    root = _workspace(tmp_path, pooled, pg_url)
    with Workspace(root) as ws:
        ws.deploy("person:test")
        worker = ws.worker(concurrency=8)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            ids = [ws.start("chain", {"n": i}, actor="person:test") for i in range(30)]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if all(ws.get_run(run_id).state == "done" for run_id in ids):
                    break
                time.sleep(0.1)
        finally:
            worker.stop()
            thread.join(timeout=60)
        assert [ws.get_run(run_id).state for run_id in ids] == ["done"] * 30
        report = ws.verify()
        assert report.ok, report.problem
        assert report.checked > 30 * 3


def test_wake_ups_come_through_the_direct_url(tmp_path: Path, pg_url: str,
                                              bouncer: Bouncer) -> None:
    """The LISTEN goes to the server: a run started through the pooler (a commit that
    makes a step ready) wakes this process's listeners."""
    root = _workspace(tmp_path, bouncer(pg_url, 2), pg_url)
    with Workspace(root) as ws:
        ws.deploy("person:test")
        woken = threading.Event()
        ws.store.add_listener(woken.set)
        try:
            ws.start("chain", {"n": 1}, actor="person:test")
            assert woken.wait(30), "no wake-up arrived"
        finally:
            ws.store.remove_listener(woken.set)


def test_the_scheduler_lock_is_not_exclusive_through_the_pooler(pg_url: str,
                                                                 bouncer: Bouncer) -> None:
    """Why ``direct_url`` exists: with one server session behind the pooler, a second
    store's try-lock runs on the session that already holds the lock, and takes it too.
    Two schedulers would lead at once."""
    pooled = bouncer(pg_url, 1)
    first, second = open_store(pooled), open_store(pooled)
    try:
        assert first.try_scheduler_lock("host-a")
        assert second.try_scheduler_lock("host-b")  # the hazard, shown
    finally:
        first.close()
        second.close()


def test_one_scheduler_with_the_direct_url(pg_url: str, bouncer: Bouncer) -> None:
    """With ``direct_url`` the lock is held on a session of the server's own: one leader;
    the other takes over once it lets go."""
    pooled = bouncer(pg_url, 1)
    first = open_store(pooled, direct_url=pg_url)
    second = open_store(pooled, direct_url=pg_url)
    try:
        assert first.try_scheduler_lock("host-a")
        assert not second.try_scheduler_lock("host-b")
        first.release_scheduler_lock("host-a")
        assert second.try_scheduler_lock("host-b")
    finally:
        first.close()
        second.close()


def test_direct_url_is_for_postgresql_only(tmp_path: Path) -> None:
    from soloist.errors import ConfigError

    with pytest.raises(ConfigError, match="PostgreSQL only"):
        open_store(f"sqlite:///{tmp_path}/state.db", direct_url="postgresql://x@127.0.0.1/x")
    with pytest.raises(ConfigError, match="postgresql:// URL"):
        open_store("postgresql://x@127.0.0.1/x", direct_url="sqlite:///x.db")


def test_direct_url_is_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    from soloist.config.settings import load_settings

    root = _workspace(tmp_path, "postgresql://app@127.0.0.1:6432/db",
                      "postgresql://app@127.0.0.1:5432/db")
    assert load_settings(root, env={}).database_direct_url == "postgresql://app@127.0.0.1:5432/db"
    env = {"SOLOIST_DATABASE_DIRECT_URL": "postgresql://app@127.0.0.1:5433/db"}
    assert load_settings(root, env=env).database_direct_url == env["SOLOIST_DATABASE_DIRECT_URL"]
    assert load_settings(_workspace(tmp_path / "plain", "sqlite:///x.db", None),
                         env={}).database_direct_url is None
