"""The embedded default under faults: ``soloist up`` SIGKILLed at random instants, and a
full disk under the store.

Kills: a few hundred three-step runs (one file effect each) are accepted, then ``soloist
up`` is killed at seeded random instants while it works them, while a ``soloist deploy``
of a changed playbook is under way (the deploy killed, and once ``up`` with it), and while
a ``soloist snapshot create`` is (the same), and restarted each time. Afterwards the
SQLite file checks out, every run is done, each effect happened once, the deploy happened
whole or not at all and a repeated one succeeds, every snapshot that is listed restores,
and the audit chain verifies.

Full disk: the store lives on a small tmpfs the test mounts; it is filled while a worker
works. Writes fail with one sentence naming the store file and the full disk, the CLI
prints that sentence and no traceback, nothing accepted is lost, and once the filler is
removed the same worker finishes every run.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from support.workers import ready, start_worker
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

from soloist.errors import StoreUnavailable
from soloist.orchestration.runs import StartRequest, start_run
from soloist.workspace import Workspace

RUNS = 300  # accepted before the first kill
LATER = 150  # accepted before the snapshots, on the deployed version if the deploy landed
SEED = 14
PLAYBOOK = """
name: faults
steps:
  - {id: a, python: "tasks:pause", args: {ms: 15}, retry: {max_attempts: 30}}
  - {id: b, tool: file.append, args: {path: effects.txt, line: "{{ run.id }}"},
     retry: {max_attempts: 30}}
  - {id: c, python: "tasks:pause", args: {ms: 15}, retry: {max_attempts: 30}}
"""
TASKS = """
import time

def pause(ctx, ms):
    time.sleep(ms / 1000)
    return {"slept": ms}
"""
ENV = {"SOLOIST_LEASE_SECONDS": "1", "SOLOIST_POLL_SECONDS": "0.05",
       "SOLOIST_ACTOR": "tester"}


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` on ``db``, read-only (it writes nothing, so it also runs
    on a full disk)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def effect_keys(root: Path) -> Counter[str]:
    path = root / "effects.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(line.split("\t")[0] for line in lines)


def accept(ws: Workspace, count: int) -> None:
    playbook = ws.registry.latest_playbook("faults")
    with ws.store.transaction() as tx:
        for _ in range(count):
            start_run(tx, StartRequest(playbook, {}, {"test": "faults"}, "test"))


def counts(ws: Workspace) -> dict[str, int]:
    with ws.store.read() as tx:
        return tx.runs.count_by_state()


class Up:
    """One ``soloist up`` at a time on the workspace, its output in ``up.log``."""

    def __init__(self, root: Path, env: dict[str, str], ws: Workspace) -> None:
        self.root = root
        self.env = env
        self.ws = ws
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.at_kills: list[tuple[int, int]] = []  # (runs done, effects) at each kill

    def start(self) -> None:
        with open(self.root / "up.log", "ab") as log:
            self.proc = subprocess.Popen([SOLOIST, "up", "--no-web", "-q", "-w",
                                          str(self.root)], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
            self.at_kills.append((counts(self.ws).get("done", 0),
                                  sum(effect_keys(self.root).values())))
            with open(self.root / "up.log", "a") as log:
                log.write(f"-- test: SIGKILL {self.proc.pid}\n")
        self.proc.wait()

    def ready(self) -> bool:
        """Whether this ``up`` has said it is alive in the store: from then on SIGTERM
        stops it cleanly (before, it is Python's default, which kills)."""
        assert self.proc is not None
        marker = f":{self.proc.pid}:"
        with self.ws.store.read() as tx:
            return any(marker in str(row["id"]) for row in tx.scheduler.workers(0.0))

    def working(self, until: float) -> None:
        """Wait until this ``up`` holds a step's lease (or ``until`` passes)."""
        assert self.proc is not None
        marker = f":{self.proc.pid}:"
        while time.time() < until:
            with self.ws.store.read() as tx:
                leased = tx.steps.expired(time.time() + 86400, 1000)
            if any(marker in (row.lease_owner or "") for row in leased):
                return
            time.sleep(0.02)


def killed_midway(args: list[str], root: Path, env: dict[str, str], after: float,
                  up: Up | None, *, once: Path | None = None) -> int | None:
    """Run ``soloist ARGS``, SIGKILL it ``after`` seconds in (or ``after`` seconds after
    the file ``once`` appears) if it is still running, and ``up`` at the same instant;
    its exit code, or None when it was killed."""
    proc = subprocess.Popen([SOLOIST, *args, "-w", str(root)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while once is not None and not once.exists() and proc.poll() is None:
        time.sleep(0.001)
    try:
        return proc.wait(after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        if up is not None:
            up.kill()
        proc.wait()
        return None


@pytest.mark.slow
def test_sigkilled_up_loses_nothing_repeats_nothing_and_leaves_no_half_file(
        tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"faults": PLAYBOOK}, TASKS)
    env = {**os.environ, **ENV}
    rng = random.Random(SEED)
    db = root / ".soloist" / "state.db"
    began = time.time()
    soloist("deploy", "-w", str(root))
    took = time.time() - began  # what a command takes here: kills land within that
    with Workspace(root) as ws:
        accept(ws, RUNS)
        up = Up(root, env, ws)
        up.start()
        try:
            # 1. While runs are processed.
            for _ in range(3):
                up.working(time.time() + 15)
                time.sleep(rng.uniform(0.05, 0.6))
                up.kill()
                up.start()
            # 2. While a changed playbook is deployed: the deploy killed at a random
            # instant, the second time with `up` at the same instant.
            source = root / "playbooks" / "faults.yaml"
            source.write_text(source.read_text().replace("ms: 15}", "ms: 16}"))
            deploys = [killed_midway(["deploy"], root, env, rng.uniform(0.7, 1.7) * took,
                                     up if attempt == 1 else None) for attempt in range(3)]
            if up.proc is not None and up.proc.poll() is not None:
                up.start()
            with ws.store.read() as tx:
                after_kills = tx.registry.latest("playbook", "faults")
            # 3. While a snapshot is taken: killed at a random instant, then (with `up`)
            # as it copies the store, then one that `up`'s death does not stop.
            accept(ws, LATER)  # runs are still worked while the snapshots are taken
            folder = root / ".soloist" / "snapshots"
            snapshots = [
                killed_midway(["snapshot", "create", "--name", "s0"], root, env,
                              rng.uniform(0.7, 1.7) * took, None),
                killed_midway(["snapshot", "create", "--name", "s1"], root, env,
                              rng.uniform(0.0, 0.002), up, once=folder / "s1.sqlite.partial")]
            if up.proc is not None and up.proc.poll() is not None:
                up.start()
            up.working(time.time() + 15)
            last = subprocess.Popen([SOLOIST, "snapshot", "create", "--name", "s2", "-w",
                                     str(root)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.6, 1.0) * took)
            up.kill()
            up.start()
            _, err = last.communicate(timeout=60)
            assert last.returncode == 0, err
            # Each either finished (0) or was killed (None).
            assert set(deploys + snapshots) <= {0, None}, (deploys, snapshots)
            # Then `up` finishes the runs.
            deadline = time.time() + 120
            while time.time() < deadline and counts(ws).get("done", 0) < RUNS + LATER:
                time.sleep(0.2)
        finally:
            assert up.proc is not None
            until = time.time() + 30
            while up.proc.poll() is None and not up.ready() and time.time() < until:
                time.sleep(0.05)
            if up.proc.poll() is None:
                up.proc.send_signal(signal.SIGTERM)
                code = up.proc.wait(60)
            else:
                code = up.proc.returncode
        log = (root / "up.log").read_text()
        print(f"kills of up: {up.kills}, (runs done, effects) at each: {up.at_kills}; "
              f"deploys: {deploys} (None: killed), version after them: "
              f"{after_kills and after_kills.version}; snapshots: {snapshots}; a command "
              f"takes {took:.1f}s")
        assert code == 0, log[-3000:]
        assert up.kills >= 4, up.kills  # 6 unless a deploy or a copy ended first
        assert any(0 < effects < RUNS for _, effects in up.at_kills)  # kills amid work
        assert up.at_kills[-1][1] < RUNS + LATER, up.at_kills
        assert "Traceback" not in log, log[-3000:]

        assert integrity(db) == "ok"
        assert integrity(db.with_name("state-ledger.db")) == "ok"
        assert counts(ws) == {"done": RUNS + LATER}, counts(ws)
        keys = effect_keys(root)
        assert len(keys) == RUNS + LATER and max(keys.values()) == 1, \
            [k for k, n in keys.items() if n > 1]
        assert ws.verify().ok

        # The deploy happened whole or not at all, and deploying again finishes it.
        assert after_kills is not None and after_kills.version in (1, 2), deploys
        soloist("deploy", "-w", str(root))
        with ws.store.read() as tx:
            latest = tx.registry.latest("playbook", "faults")
            history = tx.registry.history("playbook", "faults")
        assert latest is not None and latest.version == 2
        assert [row.version for row in history] in ([1, 2], [2, 1])
        assert latest.body["steps"][0]["args"]["ms"] == 16
        logged = sorted(e.data["version"] for e in ws.log(limit=1_000_000)
                        if e.kind == "registry.deployed" and e.data["name"] == "faults")
        assert logged == [1, 2]  # each version recorded once, with its event
        assert "unchanged" in soloist("deploy", "-w", str(root)).stdout

    # Every snapshot listed is whole and restores; a killed one is absent.
    listed = json.loads(soloist("snapshot", "list", "--json", "-w", str(root)).stdout)
    names = [s["name"] for s in listed]
    for partial in (root / ".soloist" / "snapshots").glob("*.partial"):
        assert partial.name.split(".")[0] not in names  # a half copy is no snapshot
    print(f"snapshots listed: {names}; files: "
          f"{sorted(p.name for p in (root / '.soloist' / 'snapshots').iterdir())}")
    assert "s2" in names, (names, snapshots)
    for name in names:
        assert integrity(root / ".soloist" / "snapshots" / f"{name}.sqlite") == "ok"
    assert soloist("audit", "verify", "-w", str(root)).returncode == 0
    if "s1" not in names:  # the name of a create killed half-way can be used again
        soloist("snapshot", "create", "--name", "s1", "-w", str(root))
        names.append("s1")
    for name in names:
        soloist("snapshot", "restore", name, "--force", "-w", str(root))
        assert integrity(db) == "ok"
        assert soloist("audit", "verify", "-w", str(root)).returncode == 0


# -- a full disk -------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted for this test, unmounted after it. Room for the WAL to
    reach its checkpoint size (1000 pages) with the database beside it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs",
                              str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full disk (needs root): "
                    f"{mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Write a file on ``disk`` until it has no room left."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:  # unbuffered: nothing left to flush
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_says_so_loses_nothing_and_work_resumes_once_space_is_freed(
        tmp_path: Path, small_disk: Path) -> None:
    store = small_disk / "state.db"
    root = write_workspace(tmp_path / "ws", {"faults": PLAYBOOK}, TASKS,
                           toml=f'[database]\nurl = "sqlite:///{store}"\n')
    env = {**os.environ, **ENV, "SOLOIST_LEASE_SECONDS": "10"}
    with Workspace(root) as ws:
        ws.deploy()
        accept(ws, 40)
        worker = start_worker(root, env, concurrency=2)
        try:
            until = time.time() + 60
            while not ready(root, worker) and time.time() < until:
                time.sleep(0.05)
            assert ready(root, worker), (root / "workers.log").read_text()
            while counts(ws).get("done", 0) < 5 and time.time() < until:
                time.sleep(0.05)
            assert counts(ws).get("done", 0) >= 5, (root / "workers.log").read_text()
            filler = fill(small_disk)
            # Runs are accepted until the store refuses, with the sentence users see.
            accepted = 40
            refusal: StoreUnavailable | None = None
            for _ in range(500):
                try:
                    accept(ws, 1)
                except StoreUnavailable as exc:
                    refusal = exc
                    break
                accepted += 1
            assert refusal is not None, "the store never ran out of room"
            print(f"runs accepted on the full disk before the store refused: "
                  f"{accepted - 40}")
            # SQLITE_FULL mostly; an SQLITE_IOERR_* where SQLite found no room otherwise
            sentence = (re.escape(f"the disk holding the SQLite store {store} is full (")
                        + r"SQLITE_[A-Z_]+"
                        + re.escape("): nothing more is written until space is freed "
                                    "there, and nothing already written is lost"))
            assert re.fullmatch(sentence, refusal.message), refusal.message
            cli = soloist("run", "faults", "-w", str(root), check=False)
            assert cli.returncode == 1, cli
            assert re.fullmatch(f"error: {sentence}", cli.stderr.strip()), cli.stderr
            assert "Traceback" not in cli.stderr + cli.stdout
            assert integrity(store) == "ok"
            assert worker.poll() is None  # the worker waits for room, it does not give up
            time.sleep(1.0)  # a few of its turns fail meanwhile
            filler.unlink()
            # The same worker, not restarted, finishes every run.
            until = time.time() + 90
            while counts(ws).get("done", 0) < accepted and time.time() < until:
                time.sleep(0.1)
            assert worker.poll() is None
            assert counts(ws) == {"done": accepted}, counts(ws)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
        log = (root / "workers.log").read_text()
        assert code == 0, log[-3000:]
        assert "Traceback" not in log
        assert re.search(sentence, log), log[-3000:]  # it said why it waits
        keys = effect_keys(root)
        assert len(keys) == accepted and max(keys.values()) == 1
        assert ws.verify().ok
    assert integrity(store) == "ok"
