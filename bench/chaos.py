"""The chaos suite: a mixed workload on real processes while faults land, then what was
lost, doubled or missing, counted in the store and in the external systems themselves.

    python bench/chaos.py [--runs N] [--backend postgres|sqlite|both] [--short] [--json]

PostgreSQL: ``soloist up`` (a worker and a scheduler) on each of two network-namespace
hosts and a ``soloist worker`` in the root namespace whose clock runs 90 s ahead
(libfaketime) share one embedded PostgreSQL and one SMTP relay, both on the hosts' test
network. Faults: SIGKILLs of workers at random instants (each restarted), one PostgreSQL
restart (down 5 s), one partition of a host (its link cut for three leases, then healed;
its process is not restarted), one SIGKILL of the process that leads the scheduler
(restarted), and the skewed clock throughout.

SQLite (one host): ``soloist up`` and a ``soloist worker`` on a store kept on a small
tmpfs; faults: SIGKILLs of either (so of the scheduler too) and a full disk for a few
seconds.

The workload: ``three`` (three steps, the middle one a file effect), ``mail`` (an email
through the SMTP connector), ``gated`` (a file effect behind a gate, approved with
``soloist approve``) and ``follow`` (started by the scheduler for each completed ``mail``
run, a file effect of its own). Runs are started in waves while the faults land. The
driver is also the person: it approves the gates through the CLI, and settles each send a
kill left unconfirmed the way the operator would, by looking in the relay (delivered:
``soloist resolve``; not: ``soloist approve``, send again).

Then it counts: runs lost (accepted but not done, a ``follow`` never started among them),
effects duplicated (a Message-ID the relay received twice, a run followed twice), effects
missing (a done run whose effect is not in the file or the relay), the audit chain, and
the time to drain after the last fault. A table, then one JSON line: ``runs``, ``lost``,
``duplicated``, ``missing``, ``faults_injected``, ``audit_ok``, ``scheduler_failover_s``,
``recovery_s`` (per backend, and in all). Goal: 0 lost, 0 duplicated, 0 missing, audit ok.
Needs root (network namespaces, a tmpfs mount) and Debian's faketime; ``--short`` (a few
hundred runs, every fault once) is what ``.ci/run`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SOLOIST = str(Path(sys.executable).with_name("soloist"))
SENDER = "office@chaos.test"
PASSWORD = "chaos-relay-password"
LEASE_S = 3.0
SKEW_S = 90
DOWN_S = 5.0
DRAIN_TIMEOUT_S = 600.0
MIX = (("three", 0.7), ("mail", 0.2), ("gated", 0.1))

RETRY = "retry: {max_attempts: 60, backoff: 0.05}"
PLAYBOOKS = {
    "three": f"""
name: three
steps:
  - {{id: a, python: "tasks:pause", args: {{ms: 20}}, {RETRY}}}
  - {{id: b, tool: file.append, args: {{path: effects/three.txt, line: "{{{{ run.id }}}}"}},
     {RETRY}}}
  - {{id: c, python: "tasks:pause", args: {{ms: 20}}, {RETRY}}}
""",
    "mail": f"""
name: mail
inputs: {{type: object, properties: {{n: {{type: integer}}}}, required: [n]}}
steps:
  - id: send
    tool: mail.send
    args:
      to: ["client{{{{ inputs.n }}}}@chaos.test"]
      subject: "Chaos {{{{ inputs.n }}}}"
      text: "One email, once."
    {RETRY}
""",
    "gated": f"""
name: gated
steps:
  - id: a
    tool: file.append
    args: {{path: effects/gated.txt, line: "{{{{ run.id }}}}"}}
    gate: {{message: "Write the line of {{{{ run.id }}}}?"}}
    {RETRY}
""",
    "follow": f"""
name: follow
triggers:
  - event: run.completed.mail
    inputs: {{source: "{{{{ event.run_id }}}}"}}
inputs: {{type: object, properties: {{source: {{type: string}}}}, required: [source]}}
steps:
  - {{id: a, tool: file.append, args: {{path: effects/follow.txt, line: "{{{{ inputs.source }}}}"}},
     {RETRY}}}
""",
}
# Not time.sleep: it fails under libfaketime (see tests/support/faults.py).
TASKS = """
import threading

def pause(ctx, ms):
    threading.Event().wait(ms / 1000)
    return {"slept": ms}
"""


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """A ``soloist`` process the suite can kill and start again the same way."""

    name: str
    command: str  # worker | up
    env: dict[str, str]
    prefix: list[str] = field(default_factory=list)
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self, root: Path) -> None:
        args = ["--no-web", "-q"] if self.command == "up" else []
        with open(root / "logs" / f"{self.name}.log", "ab") as out:
            self.popen = subprocess.Popen(
                [*self.prefix, SOLOIST, self.command, *args, "--concurrency", "8",
                 "-w", str(root)], env=self.env, stdout=subprocess.DEVNULL, stderr=out,
                stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


# -- the workload -----------------------------------------------------------------------


class Chaos:
    """One backend's run: its workspace, processes, servers, faults and counts."""

    def __init__(self, backend: str, root: Path, runs: int, seed: int, short: bool,
                 url: str, smtp_host: str) -> None:
        from soloist.demo.mailboxes import SMTPServer

        self.backend = backend
        self.root = root
        self.total = runs
        self.rng = random.Random(seed)
        self.short = short
        self.url = url
        self.relay = SMTPServer(root / "relay", user=SENDER, password=PASSWORD)
        self.relay.host = smtp_host
        self.procs: list[Proc] = []
        self.accepted: list[str] = []
        self.faults: list[tuple[str, float, float]] = []  # (what, began, ended)
        self.failover_s: float | None = None
        self.approved = self.settled = 0
        self._stop = threading.Event()
        self._person: threading.Thread | None = None
        self.ws: Any = None
        self._errors: list[str] = []

    # -- setup ------------------------------------------------------------------------
    def write_workspace(self) -> None:
        (self.root / "playbooks").mkdir(parents=True)
        (self.root / "logs").mkdir()
        (self.root / "effects").mkdir()
        toml = f"""[workspace]
name = "chaos"

[connectors.mail]
kind = "email"
smtp_host = "{self.relay.host}"
smtp_port = {self.relay.port}
smtp_security = "none"
username = "{SENDER}"
password = "secret:MAIL_PASSWORD"
from_address = "{SENDER}"
timeout = "10s"
rate = 500
burst = 500
"""
        (self.root / "soloist.toml").write_text(toml)
        for name, text in PLAYBOOKS.items():
            (self.root / "playbooks" / f"{name}.yaml").write_text(text)
        (self.root / "tasks.py").write_text(TASKS)

    def env(self, url: str | None = None, **extra: str) -> dict[str, str]:
        return {**os.environ, "SOLOIST_DATABASE_URL": url or self.url,
                "SOLOIST_LEASE_SECONDS": str(LEASE_S), **extra}

    def workspace(self) -> Any:
        from soloist.workspace import Workspace

        return Workspace(self.root, database_url=self.url)

    def prepare(self) -> None:
        self.relay.start()
        self.write_workspace()
        self.ws = self.workspace()
        self.ws.secrets.set("MAIL_PASSWORD", PASSWORD, "person:chaos")
        self.ws.deploy()

    # -- runs -------------------------------------------------------------------------
    def start_wave(self, count: int) -> None:
        """Start ``count`` runs of the mix (each playbook's share of them)."""
        with self.workspace() as ws:
            for name, share in MIX:
                n = max(1, round(count * share))
                base = len(self.accepted)
                rows = [(f"{name}#{base + i}", {"n": base + i} if name == "mail" else {})
                        for i in range(n)]
                self.accepted.extend(ws.start_many(name, rows, actor="chaos"))

    def counts(self) -> dict[str, dict[str, int]]:
        """Runs by playbook and state (one open workspace for the driver's reads: opening
        one for each look would cost the relay, in this process, its share of the CPU)."""
        from soloist.store.base import RunFilter

        assert self.ws is not None
        out: dict[str, dict[str, int]] = {}
        with self.ws.store.read() as tx:
            for name in PLAYBOOKS:
                for state in ("done", "running", "compensating", "failed", "cancelled"):
                    n = tx.runs.count(RunFilter(state=state, playbook=name))
                    if n:
                        out.setdefault(name, {})[state] = n
        return out

    def done(self) -> int:
        return sum(c.get("done", 0) for p, c in self.counts().items() if p != "follow")

    def wait_done(self, target: float, until: float) -> None:
        """Until ``target`` runs of those started are done (or ``until`` passes)."""
        target = min(target, len(self.accepted))
        while time.time() < until and self.done() < target:
            time.sleep(0.2)

    # -- the person ---------------------------------------------------------------------
    def person(self) -> None:
        """Approve the gates through the CLI; settle unconfirmed sends from the relay."""
        from soloist.integrations.entities import Contact
        from soloist.integrations.mail.compose import message_id_for

        handled: set[str] = set()
        # A few decisions at once: each `soloist` command takes about a second to start.
        with ThreadPoolExecutor(max_workers=4) as pool:
            while not self._stop.is_set():
                try:
                    waiting = [p.approval for p in self.ws.approvals()
                               if p.approval.id not in handled]
                    # The relay's folder is read only when a send needs settling: parsing
                    # every message twice a second would slow the relay beside it.
                    delivered = self.relay.message_ids_in(self.root / "relay") if any(
                        a.reason == "unconfirmed" for a in waiting) else Counter()
                    decisions: list[tuple[str, list[str]]] = []
                    for approval in waiting:
                        if approval.reason == "unconfirmed":
                            mid = message_id_for(f"{approval.run_id}/send/0",
                                                 Contact(email=SENDER))
                            decisions.append(("settled", [
                                "resolve", approval.id, "--note", "it is in the relay"]
                                if delivered.get(mid) else ["approve", approval.id]))
                        elif "Write the line" in approval.message:
                            decisions.append(("approved", ["approve", approval.id]))
                    done = list(pool.map(lambda d: self._cli(*d[1]), decisions))
                    for (kind, args), ok in zip(decisions, done, strict=True):
                        if ok:
                            handled.add(args[1])
                            setattr(self, kind, getattr(self, kind) + 1)
                except Exception as exc:  # the store is down (a fault): look again later
                    self._errors.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(0.5)

    def _cli(self, *args: str) -> int:
        done = subprocess.run([SOLOIST, *args, "-w", str(self.root)], env=self.env(),
                              capture_output=True, check=False, stdin=subprocess.DEVNULL)
        return 1 if done.returncode == 0 else 0

    # -- faults -----------------------------------------------------------------------
    def fault(self, what: str, act: Callable[[], None]) -> None:
        began = time.time()
        log(f"{self.backend}: {what}")
        act()
        self.faults.append((what, began, time.time()))

    def kill_random(self) -> None:
        candidates = [p for p in self.procs if p.alive()]
        victim = self.rng.choice(candidates)

        def act() -> None:
            victim.kill()
            victim.restarts += 1
            victim.start(self.root)

        self.fault(f"SIGKILL {victim.name} (pid {victim.pid})", act)

    def elections(self) -> list[Any]:
        """The ``scheduler.elected`` events, oldest first."""
        with self.ws.store.read() as tx:
            return sorted(tx.events.of_kind("scheduler.elected", limit=10_000),
                          key=lambda e: e.seq)

    def leader(self) -> Proc | None:
        for event in reversed(self.elections()):
            for proc in self.procs:
                if proc.alive() and f":{proc.pid}:" in event.actor:
                    return proc
        return None

    def kill_scheduler(self) -> None:
        until = time.time() + 60  # after a kill, the next election may take a lease
        victim = self.leader()
        while victim is None and time.time() < until:
            time.sleep(0.2)
            victim = self.leader()
        if victim is None:
            raise RuntimeError(f"{self.backend}: no scheduler was elected in 60 s")
        seen = len(self.elections())
        killed_at = self.ws.store.now()

        def act() -> None:
            victim.kill()
            victim.restarts += 1
            victim.start(self.root)

        self.fault(f"SIGKILL the scheduler's leader {victim.name} (pid {victim.pid})", act)
        until = time.time() + 120
        while time.time() < until:
            elected = self.elections()
            if len(elected) > seen:
                self.failover_s = round(elected[seen].ts - killed_at, 3)
                log(f"{self.backend}: scheduler failover {self.failover_s} s")
                return
            time.sleep(0.1)

    # -- the end ----------------------------------------------------------------------
    def drain(self) -> float:
        """Wait until every accepted run and every follow-up is done; seconds after the
        last fault ended."""
        last = max((ended for _, _, ended in self.faults), default=time.time())
        until = time.time() + DRAIN_TIMEOUT_S
        while time.time() < until:
            counts = self.counts()
            mails = counts.get("mail", {}).get("done", 0)
            follows = counts.get("follow", {}).get("done", 0)
            open_runs = sum(n for c in counts.values() for s, n in c.items()
                            if s not in ("done", "failed", "cancelled"))
            if not open_runs and self.done() == len(self.accepted) and follows >= mails:
                break
            time.sleep(0.2)
        return round(max(0.0, time.time() - last), 2)

    def check(self) -> dict[str, Any]:
        from soloist.integrations.entities import Contact
        from soloist.integrations.mail.compose import message_id_for

        with self.workspace() as ws:
            with ws.store.read() as tx:
                runs = {r.id: r for r in tx.runs.list(limit=1_000_000)}
                # Counted in the store: a `soloist approve` whose answer was lost to a fault
                # (its exit code not 0) may still have decided.
                approved = sum(1 for r in runs.values() if r.playbook == "gated"
                               for a in tx.approvals.for_run(r.id)
                               if a.decision == "approved" and a.decided_by != "system")
            audit_ok = ws.verify().ok
        accepted = set(self.accepted)
        not_done = [r for r in accepted if r not in runs or runs[r].state != "done"]
        by_source = Counter(line.split("\t")[1] for line in self.lines("follow"))
        mail_done = [r for r in accepted if r in runs and runs[r].state == "done"
                     and runs[r].playbook == "mail"]
        follows = Counter(str(r.inputs.get("source")) for r in runs.values()
                          if r.playbook == "follow")
        never_followed = [r for r in mail_done if not follows.get(r)]
        follow_not_done = [r for r in runs.values() if r.playbook == "follow"
                           and r.state != "done"]
        delivered = self.relay.message_ids_in(self.root / "relay")
        ids = {r: message_id_for(f"{r}/send/0", Contact(email=SENDER)) for r in mail_done}
        lines = {name: Counter(line.split("\t")[1] for line in self.lines(name))
                 for name in ("three", "gated")}
        duplicated = (sum(n - 1 for n in delivered.values() if n > 1)
                      + sum(n - 1 for n in follows.values() if n > 1)
                      + sum(n - 1 for n in by_source.values() if n > 1)
                      + sum(n - 1 for c in lines.values() for n in c.values() if n > 1))
        done_of = {name: [r for r in accepted if r in runs and runs[r].state == "done"
                          and runs[r].playbook == name] for name in ("three", "gated")}
        missing = (sum(1 for r in mail_done if not delivered.get(ids[r]))
                   + sum(1 for name, done in done_of.items() for r in done
                         if not lines[name].get(r))
                   + sum(1 for r in runs.values() if r.playbook == "follow"
                         and r.state == "done" and not by_source.get(str(r.inputs["source"]))))
        return {
            "runs": len(accepted) + len(follows),
            "lost": len(not_done) + len(never_followed) + len(follow_not_done),
            "duplicated": duplicated,
            "missing": missing,
            "audit_ok": audit_ok,
            "emails": sum(delivered.values()),
            "approved_by_cli": approved,
            "cli_decisions_ok": self.approved + self.settled,
            "unconfirmed_settled": self.settled,
            "exited": self.exited(),
        }

    def exited(self) -> list[str]:
        """The processes that ended on their own (not killed by a fault): none should."""
        return [f"{p.name} (exit {p.popen.returncode})" for p in self.procs
                if p.popen is not None and p.popen.poll() is not None]

    def stop(self) -> list[int | None]:
        self._stop.set()
        if self._person is not None:
            self._person.join(30)
        codes = [p.stop() for p in self.procs]
        self.relay.stop()
        if self.ws is not None:
            self.ws.close()
        return codes

    def lines(self, name: str) -> list[str]:
        path = self.root / "effects" / f"{name}.txt"
        return path.read_text().splitlines() if path.exists() else []

    def start_person(self) -> None:
        self._person = threading.Thread(target=self.person, name="person", daemon=True)
        self._person.start()


# -- the two backends --------------------------------------------------------------------


def schedule(chaos: Chaos, kills: int, specials: list[tuple[str, Callable[[], None]]]
             ) -> None:
    """Start the runs in waves and land the faults among them: ``kills`` random SIGKILLs
    and each of ``specials`` once, at seeded points of the load."""
    waves = 8
    per_wave = max(1, chaos.total // waves)
    events: list[tuple[float, str, Callable[[], None]]] = []
    for _ in range(kills):
        events.append((chaos.rng.uniform(0.05, 0.85), "kill", chaos.kill_random))
    for index, (name, act) in enumerate(specials):
        events.append((0.15 + 0.65 * (index + 0.5) / len(specials), name, act))
    events.sort(key=lambda e: e[0])
    until = time.time() + DRAIN_TIMEOUT_S
    for wave in range(waves):
        chaos.start_wave(per_wave if wave < waves - 1 else chaos.total - len(chaos.accepted))
        window = (wave + 1) / waves
        while events and events[0][0] <= window:
            at, _, act = events.pop(0)
            # Each fault when that share of the whole load is done, and a moment after
            # the last one (a process just restarted gets to work before the next).
            chaos.wait_done(at * chaos.total, until)
            time.sleep(1.0)
            act()
    for _, _, act in events:
        act()


def run_postgres(work: Path, runs: int, seed: int, short: bool) -> dict[str, Any]:
    from support import netns
    from support.faults import faketime_available, skewed
    from support.postgres import EmbeddedPostgres

    for reason in (netns.unavailable(), faketime_available()):
        if reason is not None:
            return {"skipped": reason}
    with netns.Hosts(2) as hosts:
        pg = EmbeddedPostgres(fast=True, also_on=[hosts.interface])
        pg.start()
        try:
            url = pg.create_database("chaos").replace("127.0.0.1", hosts.gateway)
            chaos = Chaos("postgres", work, runs, seed, short, url, hosts.gateway)
            chaos.prepare()
            chaos.procs = [
                Proc("up@h1", "up", chaos.env(), hosts[0].prefix),
                Proc("up@h2", "up", chaos.env(), hosts[1].prefix),
                Proc(f"worker+{SKEW_S}s", "worker", chaos.env(**skewed(SKEW_S))),
            ]
            for proc in chaos.procs:
                proc.start(work)
            chaos.start_person()
            began = time.time()

            def restart_db() -> None:
                def act() -> None:
                    pg.halt()
                    time.sleep(DOWN_S)
                    pg.resume()
                chaos.fault(f"PostgreSQL stopped for {DOWN_S:g} s", act)

            def partition() -> None:
                host = hosts[1]

                def act() -> None:
                    hosts.cut(host)
                    time.sleep(3 * LEASE_S)
                    hosts.heal(host)
                chaos.fault(f"partition of h2 for {3 * LEASE_S:g} s", act)

            try:
                schedule(chaos, 3 if short else 8, [
                    ("restart", restart_db), ("partition", partition),
                    ("scheduler", chaos.kill_scheduler)])
                recovery = chaos.drain()
                result = chaos.check()
            finally:
                codes = chaos.stop()
            result.update({
                "faults_injected": len(chaos.faults) + 1,  # + the skewed clock throughout
                "scheduler_failover_s": chaos.failover_s,
                "recovery_s": recovery,
                "seconds": round(time.time() - began, 1),
                "exit_codes": codes,
                "faults": [what for what, _, _ in chaos.faults] + [f"clock +{SKEW_S} s"],
            })
            return result
        finally:
            pg.stop()


@contextlib.contextmanager
def tmpfs(size_mb: int) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="soloist-chaos-disk-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                           str(folder)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        folder.rmdir()
        raise RuntimeError(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def run_sqlite(work: Path, runs: int, seed: int, short: bool) -> dict[str, Any]:
    try:
        disk = tmpfs(64)
        store_dir = disk.__enter__()
    except RuntimeError as exc:
        return {"skipped": str(exc)}
    try:
        url = f"sqlite:///{store_dir}/state.db"
        chaos = Chaos("sqlite", work, runs, seed, short, url, "127.0.0.1")
        chaos.prepare()
        chaos.procs = [Proc("up", "up", chaos.env()), Proc("worker", "worker", chaos.env())]
        for proc in chaos.procs:
            proc.start(work)
        chaos.start_person()
        began = time.time()

        def disk_full() -> None:
            filler = store_dir / "filler"

            def act() -> None:
                with contextlib.suppress(OSError), filler.open("wb") as out:
                    while True:
                        out.write(b"\0" * (1 << 20))
                        out.flush()
                time.sleep(3.0)
                filler.unlink()
            chaos.fault("disk full for 3 s", act)

        def kill_up() -> None:
            chaos.kill_scheduler()

        try:
            schedule(chaos, 3 if short else 8, [("disk", disk_full), ("scheduler", kill_up)])
            recovery = chaos.drain()
            result = chaos.check()
            result["integrity"] = _integrity(store_dir / "state.db")
        finally:
            codes = chaos.stop()
        result.update({
            "faults_injected": len(chaos.faults),
            "scheduler_failover_s": chaos.failover_s,
            "recovery_s": recovery,
            "seconds": round(time.time() - began, 1),
            "exit_codes": codes,
            "faults": [what for what, _, _ in chaos.faults],
        })
        return result
    finally:
        disk.__exit__(None, None, None)


def _integrity(path: Path) -> str:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# -- report -------------------------------------------------------------------------------

FIGURES = ("runs", "lost", "duplicated", "missing", "faults_injected", "audit_ok",
           "scheduler_failover_s", "recovery_s")


def report(results: dict[str, dict[str, Any]], as_json: bool) -> int:
    print(f"{'':<24}" + "".join(f"{b:>14}" for b in results))
    for figure in (*FIGURES, "emails", "approved_by_cli", "cli_decisions_ok",
                   "unconfirmed_settled", "seconds"):
        print(f"{figure:<24}" + "".join(f"{r.get(figure, '-')!s:>14}"
                                        for r in results.values()))
    for backend, result in results.items():
        if "skipped" in result:
            print(f"{backend}: skipped: {result['skipped']}")
        else:
            print(f"{backend} faults: {'; '.join(result['faults'])}")
    ran = [r for r in results.values() if "skipped" not in r]
    total: dict[str, Any] = {
        "runs": sum(r["runs"] for r in ran),
        "lost": sum(r["lost"] for r in ran),
        "duplicated": sum(r["duplicated"] for r in ran),
        "missing": sum(r["missing"] for r in ran),
        "faults_injected": sum(r["faults_injected"] for r in ran),
        "audit_ok": all(r["audit_ok"] for r in ran) and bool(ran),
        "scheduler_failover_s": max((r["scheduler_failover_s"] for r in ran
                                     if r["scheduler_failover_s"] is not None), default=None),
        "recovery_s": max((r["recovery_s"] for r in ran), default=None),
    }
    for backend, result in results.items():
        for figure in FIGURES:
            total[f"{backend}_{figure}"] = result.get(figure)
    ok = bool(ran) and total["lost"] == total["duplicated"] == total["missing"] == 0 \
        and total["audit_ok"] and not any(r["exited"] for r in ran)
    for backend, result in results.items():
        if result.get("exited"):
            print(f"{backend}: processes that exited by themselves: {result['exited']}")
    print("goal (0 lost, 0 duplicated, 0 missing, audit ok, no process exited):",
          "met" if ok else "NOT met")
    if as_json:
        print(json.dumps(total))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per backend (2000)")
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--short", action="store_true",
                        help="a few hundred runs, every fault once (what CI runs)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    # aiosmtpd logs a warning about its own deprecated Session.login_data at every log-in.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    runs = args.runs or (300 if args.short else 2000)
    backends = ("postgres", "sqlite") if args.backend == "both" else (args.backend,)
    results: dict[str, dict[str, Any]] = {}
    top = Path(tempfile.mkdtemp(prefix="soloist-chaos-"))
    try:
        for backend in backends:
            work = top / backend
            work.mkdir()
            run = run_postgres if backend == "postgres" else run_sqlite
            log(f"{backend}: {runs} runs")
            results[backend] = run(work, runs, args.seed, args.short)
    finally:
        if args.keep:
            log(f"kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    return report(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
