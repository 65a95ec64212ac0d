"""Snapshots: a consistent copy of the whole store, listed and restorable.

SQLite copies with its online backup API; PostgreSQL with ``pg_dump``. A restore rewinds
everything but what must never be rewound (``soloist.store.ledger``): the dispatch ledger,
so that an intent dispatched after the snapshot is recognised when its gate is approved
again and is not done twice, and the highest version of each definition, so that version
numbers never repeat. It refuses while any worker or scheduler process is alive (their
work would be written over, and they hold what the store no longer says), unless forced.
It says what it forgets (intents dispatched, runs started and finished, facts and
documents written since the snapshot) and records that in the log it brings back.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soloist.control.processes import alive as alive_processes
from soloist.errors import InputError, InvalidState, NotFound
from soloist.store.base import NewEvent, Store, Transaction
from soloist.store.permissions import secure_tree

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: How many of each kind of forgotten thing a restore names (it counts them all).
LISTED = 100


@dataclass(frozen=True)
class Snapshot:
    name: str
    path: Path
    created_at: float
    created_by: str
    size_bytes: int
    store: str  # sqlite | postgres


@dataclass
class Forgotten:
    """What happened after a snapshot, which restoring it takes out of the store.

    Intents stay in the dispatch ledger: a replay of one returns its recorded result.
    Each list names at most :data:`LISTED` items; ``counts`` has how many there were.
    """

    intents: list[dict[str, Any]] = field(default_factory=list)  # key, tool, run, status
    runs_started: list[dict[str, Any]] = field(default_factory=list)
    runs_finished: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.counts.values())


@dataclass(frozen=True)
class RestoreReport:
    snapshot: Snapshot
    forced: bool
    forgotten: Forgotten
    alive: list[dict[str, Any]]  # the processes that were alive (when forced)


class Snapshots:
    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self.kind = "sqlite" if store.url.startswith("sqlite") else "postgres"

    def _file(self, name: str) -> Path:
        return self.folder / f"{name}.{'sqlite' if self.kind == 'sqlite' else 'pgdump'}"

    def create(self, actor: str, name: str | None = None) -> Snapshot:
        name = name or time.strftime("%Y%m%d-%H%M%S")
        if not NAME.match(name):
            raise InputError(f"{name!r} is not a valid snapshot name; use letters, digits, "
                             "'_', '-' and '.'")
        path = self._file(name)
        if path.exists():
            raise InvalidState(f"a snapshot named {name!r} exists; choose another name")
        self.folder.mkdir(parents=True, exist_ok=True)
        taken = time.time()  # what is written from here on may or may not be in the copy
        with self.store.transaction() as tx:  # the copy's log ends with its own creation
            tx.events.append(NewEvent("snapshot.created", {"name": name}, actor=actor))
        partial = path.with_suffix(path.suffix + ".partial")
        try:
            self.store.backup(partial)
        except BaseException:
            partial.unlink(missing_ok=True)  # on a full disk, the room it took is needed
            raise
        # Each file appears whole or not at all, the copy last: a create killed at any
        # instant leaves a snapshot that lists and restores, or none (only .partial files).
        meta = {"created_at": taken, "created_by": actor, "store": self.kind}
        meta_file = path.with_suffix(".json")
        meta_partial = meta_file.with_suffix(".json.partial")
        meta_partial.write_text(json.dumps(meta))
        meta_partial.rename(meta_file)
        partial.rename(path)
        secure_tree(self.folder)  # a copy of the store is as private as the store
        return self._load(path)

    def _load(self, path: Path) -> Snapshot:
        meta_file = path.with_suffix(".json")
        try:  # one an older version was killed while writing is only missing its details
            meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        except ValueError:
            meta = {}
        return Snapshot(path.stem, path, float(meta.get("created_at", path.stat().st_mtime)),
                        str(meta.get("created_by", "?")), path.stat().st_size,
                        str(meta.get("store", self.kind)))

    def list(self) -> list[Snapshot]:
        if not self.folder.is_dir():
            return []
        files = [p for p in self.folder.iterdir() if p.suffix in (".sqlite", ".pgdump")]
        return sorted((self._load(p) for p in files), key=lambda s: s.created_at)

    def forgotten(self, since: float) -> Forgotten:
        """What restoring a snapshot taken at ``since`` would take out of the store now."""
        out = Forgotten()
        with self.store.read() as tx:
            intents = tx.ledger.since(since, 100_000)
            started = tx.changes.runs_created(since, 100_000)
            finished = tx.changes.runs_finished(since, 100_000)
            facts = tx.changes.facts(since, 100_000)
            documents = tx.changes.documents(since, 100_000)
        out.intents = [{"key": e.idempotency_key, "tool": e.tool, "run": e.run_id,
                        "step": e.step_id, "status": e.status, "at": e.recorded_at}
                       for e in intents[:LISTED]]
        out.runs_started = [{"run": r["id"], "playbook": r["playbook"], "state": r["state"]}
                            for r in started[:LISTED]]
        out.runs_finished = [{"run": r["id"], "playbook": r["playbook"], "state": r["state"]}
                             for r in finished[:LISTED]]
        out.facts = [{"namespace": r["namespace"], "subject": r["subject"], "key": r["key"],
                      "version": r["version"], "op": r["op"], "actor": r["actor"]}
                     for r in facts[:LISTED]]
        out.documents = [{"namespace": r["namespace"], "key": r["doc_key"],
                          "version": r["version"], "actor": r["actor"]}
                         for r in documents[:LISTED]]
        out.counts = {"intents": len(intents), "runs_started": len(started),
                      "runs_finished": len(finished), "facts": len(facts),
                      "documents": len(documents)}
        return out

    def restore(self, name: str, actor: str, *, force: bool = False) -> RestoreReport:
        snapshot = next((s for s in self.list() if s.name == name), None)
        if snapshot is None:
            raise NotFound(f"no snapshot named {name!r}; `soloist snapshot list` shows them")
        if snapshot.store != self.kind:
            raise InvalidState(f"snapshot {name!r} is of a {snapshot.store} store, this "
                               f"workspace uses {self.kind}")
        now = time.time()
        alive = alive_processes(self.store, now)
        if alive and not force:
            names = "; ".join(f"{p.get('role', 'worker')} {p['id']} seen "
                              f"{max(0.0, now - float(p['heartbeat_at'])):.0f}s ago"
                              for p in alive[:5])
            raise InvalidState(f"{len(alive)} worker or scheduler process(es) are running on "
                               f"this store ({names}); stop them first (`soloist up` and "
                               "`soloist worker` stop on Ctrl-C or SIGTERM), or pass --force")
        with self.store.read() as tx:
            held = [s for s in tx.steps.expired(float("inf"), 1000)
                    if (s.lease_expires or 0) > now]
        if held and not force:
            raise InvalidState(f"{len(held)} step(s) are held by running workers; stop them "
                               "first, or pass --force")
        forgotten = self.forgotten(snapshot.created_at)
        with self.store.read() as tx:
            model = tx.documents.embedding_model()
        seen = model.generation if model is not None else 0
        self.store.restore(snapshot.path)
        with self.store.transaction() as tx:
            _renew_vectors(tx, seen)
            tx.events.append(NewEvent("snapshot.restored", {
                "name": name, "forced": force, "taken_at": snapshot.created_at,
                "alive": [p["id"] for p in alive],
                "forgets": asdict(forgotten)}, actor=actor))
        return RestoreReport(snapshot, force, forgotten, alive)


def _renew_vectors(tx: Transaction, seen: int) -> None:
    """Make every process that holds memory's vectors in memory load them anew.

    Chunk ids after a restore start again from the snapshot's, so vectors cached from the
    store as it was would stand for other chunks. The restored generation gets a number
    above any it ever had (``seen``: the store's just before; the mark: before earlier
    restores), and so does a first model recorded later (``set_embedding_model``): a
    cache never takes the vectors of the restored store for its own.
    """
    restored = tx.documents.embedding_model()
    generation = max(seen, restored.generation if restored is not None else 0,
                     tx.ledger.version_mark("memory", "vectors")) + 1
    tx.ledger.mark_version("memory", "vectors", generation)
    if restored is not None:
        tx.changes.renew_generation(generation)
