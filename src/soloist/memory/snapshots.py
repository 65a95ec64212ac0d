"""Snapshots: a consistent copy of the whole store, listed and restorable.

SQLite copies with its online backup API; PostgreSQL with ``pg_dump``. A restore refuses
while workers hold leases (their work would be written over), unless forced; it is
recorded in the log that it brings back.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from soloist.errors import InputError, InvalidState, NotFound
from soloist.store.base import NewEvent, Store
from soloist.store.permissions import secure_tree

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Snapshot:
    name: str
    path: Path
    created_at: float
    created_by: str
    size_bytes: int
    store: str  # sqlite | postgres


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
        with self.store.transaction() as tx:  # the copy's log ends with its own creation
            tx.events.append(NewEvent("snapshot.created", {"name": name}, actor=actor))
        partial = path.with_suffix(path.suffix + ".partial")
        self.store.backup(partial)
        partial.rename(path)  # a snapshot that exists is complete
        meta = {"created_at": time.time(), "created_by": actor, "store": self.kind}
        path.with_suffix(".json").write_text(json.dumps(meta))
        secure_tree(self.folder)  # a copy of the store is as private as the store
        return self._load(path)

    def _load(self, path: Path) -> Snapshot:
        meta_file = path.with_suffix(".json")
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        return Snapshot(path.stem, path, float(meta.get("created_at", path.stat().st_mtime)),
                        str(meta.get("created_by", "?")), path.stat().st_size,
                        str(meta.get("store", self.kind)))

    def list(self) -> list[Snapshot]:
        if not self.folder.is_dir():
            return []
        files = [p for p in self.folder.iterdir() if p.suffix in (".sqlite", ".pgdump")]
        return sorted((self._load(p) for p in files), key=lambda s: s.created_at)

    def restore(self, name: str, actor: str, *, force: bool = False) -> Snapshot:
        snapshot = next((s for s in self.list() if s.name == name), None)
        if snapshot is None:
            raise NotFound(f"no snapshot named {name!r}; `soloist snapshot list` shows them")
        if snapshot.store != self.kind:
            raise InvalidState(f"snapshot {name!r} is of a {snapshot.store} store, this "
                               f"workspace uses {self.kind}")
        now = time.time()
        with self.store.read() as tx:
            held = [s for s in tx.steps.expired(float("inf"), 1000)
                    if (s.lease_expires or 0) > now]
        if held and not force:
            raise InvalidState(f"{len(held)} step(s) are held by running workers; stop them "
                               "first, or pass --force")
        self.store.restore(snapshot.path)
        with self.store.transaction() as tx:
            tx.events.append(NewEvent("snapshot.restored", {"name": name, "forced": force},
                                      actor=actor))
        return snapshot
