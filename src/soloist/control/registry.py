"""Deploy, rollback and look up versioned definitions (playbooks, agents, policies).

A deploy validates the whole workspace first (nothing is deployed if any file is bad),
then records a new version of each definition whose content changed, with who deployed
it and when. A run pins the playbook version it started with, and its content digest.

A version number never means two contents: the highest number ever given to each
definition is kept where a snapshot restore cannot rewind it (``tx.ledger``), and the next
deploy or rollback goes past it. The caches of parsed definitions are keyed by content
digest as well as by version, so a process that outlived a restore still runs what each
run pinned, never an older text that happened to carry the same number.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from soloist.control.agents import Agent
from soloist.control.checks import ToolNames
from soloist.control.loader import load_definitions
from soloist.control.memory_files import MemoryFiles, load_memory, split_name, unknown_documents
from soloist.control.modules import WorkspaceModules
from soloist.control.playbooks import Playbook
from soloist.control.policies import Policies
from soloist.errors import DefinitionError, InputError, InvalidState, NotFound
from soloist.store.base import DefinitionRow, NewEvent, Store, Transaction

KINDS = ("playbook", "agent", "policies")


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class DeployReport:
    deployed: list[tuple[str, str, int]] = field(default_factory=list)  # kind, name, version
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)


class MemorySeed(Protocol):
    """The changes of a workspace's ``memory/`` folder, ready to be written in the deploy's
    transaction (the memory plane makes it: see memory/seed.py)."""

    def write(self, tx: Transaction, actor: str, now: float
              ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
        """Write what changed; (deployed, unchanged) as (kind, name, version)."""
        ...


#: The memory folder's documents and facts -> their seed (embedded before the transaction)
MemorySeeder = Callable[[MemoryFiles], MemorySeed]


@dataclass(frozen=True)
class RollbackReport:
    kind: str
    name: str
    version: int  # the new version, with the content of ``to_version``
    to_version: int
    source: str | None  # the file the definition comes from, relative to the workspace
    #: Why the next deploy would undo this rollback (the file on disk differs), or None.
    warning: str | None = None
    written: bool = False  # the rolled-back content was written to ``source``
    deployed: bool = True  # false: ``version`` already had that content, only written


def next_version(tx: Transaction, kind: str, name: str, latest: DefinitionRow | None) -> int:
    """A number no version of this definition ever had, even before a restore; kept."""
    mark = tx.ledger.version_mark(kind, name)
    version = max(mark, latest.version if latest is not None else 0) + 1
    tx.ledger.mark_version(kind, name, version)
    return version


def _bodies(root: Path, tools: ToolNames | None = None,
            modules: WorkspaceModules | None = None
            ) -> list[tuple[str, str, dict[str, Any], str | None]]:
    definitions = load_definitions(root, tools, modules)
    out: list[tuple[str, str, dict[str, Any], str | None]] = []
    for name, playbook in sorted(definitions.playbooks.items()):
        # A playbook that reads no memory documents keeps the digest it had before
        # playbooks could name them: an upgrade alone deploys no new versions.
        excluded = {"version"} if playbook.memory else {"version", "memory"}
        out.append(("playbook", name, playbook.model_dump(mode="json", exclude=excluded),
                    definitions.sources.get(("playbook", name))))
    for name, agent in sorted(definitions.agents.items()):
        out.append(("agent", name, agent.model_dump(mode="json", exclude={"version"}),
                    definitions.sources.get(("agent", name))))
    out.append(("policies", "policies",
                definitions.policies.model_dump(mode="json", exclude={"version"}),
                definitions.sources.get(("policies", "policies"))))
    return out


class Registry:
    """The versioned definitions of one workspace, over its store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # (name, version, digest): a version number alone may have meant another content
        # before a restore (a store restored without its ledger), the digest never does.
        self._cache: dict[tuple[str, int, str], Playbook] = {}
        self._agents: dict[tuple[str, int, str], Agent] = {}
        self._digests: dict[int, str] = {}  # id of a cached model -> its content digest
        self._policies: tuple[int, str, Policies] | None = None  # version, digest, parsed

    def deploy(self, root: Path, actor: str, tools: ToolNames | None = None,
               modules: WorkspaceModules | None = None,
               problems: Sequence[str] = (),
               seeder: MemorySeeder | None = None) -> DeployReport:
        """Validate and version the workspace at ``root``; with ``tools``, also check that
        what the playbooks call exists (see :mod:`soloist.control.checks`), importing the
        workspace's Python through ``modules``. ``problems`` found by the caller elsewhere
        (soloist.toml's connectors) stop the deploy too, listed with the definitions'.
        ``seeder`` writes the ``memory/`` folder's changes in the same transaction."""
        memory_problems: list[str] = []
        files = load_memory(root, memory_problems)
        try:
            bodies = _bodies(root, tools, modules)  # raises before anything is written
        except DefinitionError as exc:
            raise DefinitionError([*problems, *exc.problems, *memory_problems]) from None
        memory_problems.extend(unknown_documents(
            root, [(name, body.get("memory") or [], source)
                   for kind, name, body, source in bodies if kind == "playbook"],
            files, self._stored))
        if problems or memory_problems:
            raise DefinitionError([*problems, *memory_problems])
        # Embedding happens here, outside the transaction that writes.
        seed = seeder(files) if seeder is not None and (files.documents or files.facts) \
            else None
        report = DeployReport()
        now = time.time()
        with self.store.transaction() as tx:
            for kind, name, body, source in bodies:
                latest = tx.registry.latest(kind, name)
                fingerprint = digest(body)
                if latest is not None and latest.digest == fingerprint:
                    report.unchanged.append((kind, name, latest.version))
                    continue
                version = next_version(tx, kind, name, latest)
                tx.registry.insert(DefinitionRow(kind, name, version, fingerprint, body, source,
                                                 actor, now, None))
                tx.events.append(NewEvent("registry.deployed", {
                    "kind": kind, "name": name, "version": version, "digest": fingerprint,
                    "source": source}, actor=actor, ts=now))
                report.deployed.append((kind, name, version))
            if seed is not None:
                deployed, unchanged = seed.write(tx, actor, now)
                report.deployed.extend(deployed)
                report.unchanged.extend(unchanged)
        return report

    def _stored(self, document: str) -> bool:
        namespace, key = split_name(document)
        with self.store.read() as tx:
            return bool(tx.documents.history(namespace, key))

    def rollback(self, kind: str, name: str, to_version: int, actor: str, *,
                 root: Path | None = None, write: bool = False) -> RollbackReport:
        """Deploy an older version again, as a new version.

        With ``root`` (the workspace folder), says whether the definition's file still
        holds newer content (the next deploy would deploy it again), and with ``write``
        writes the rolled-back content to that file instead.
        """
        if kind not in KINDS:
            raise NotFound(f"no definition kind {kind!r}; use one of {', '.join(KINDS)}")
        with self.store.read() as tx:
            target = tx.registry.get(kind, name, to_version)
        if target is None:
            raise NotFound(f"{kind} {name!r} has no version {to_version}")
        # Refused before anything changes: a definition that is not YAML cannot be written.
        destination = _destination(root, kind, name, target) if write and root else None
        text = _yaml_text(kind, target, destination) if destination is not None else None
        now = time.time()
        with self.store.transaction() as tx:
            latest = tx.registry.latest(kind, name)
            if latest is None:
                raise NotFound(f"{kind} {name!r} has no version {to_version}")
            fresh = latest.digest != target.digest
            if not fresh and text is None:
                raise InvalidState(f"{kind} {name!r} v{latest.version} is already the same as "
                                   f"v{to_version}")
            # Already deployed (a rollback before, which warned): only the file is left.
            version = next_version(tx, kind, name, latest) if fresh else latest.version
            if fresh:
                tx.registry.insert(DefinitionRow(kind, name, version, target.digest,
                                                 target.body, target.source, actor, now,
                                                 f"rollback to v{to_version}"))
                tx.events.append(NewEvent("registry.rollback", {
                    "kind": kind, "name": name, "version": version,
                    "from_version": to_version, "written": destination}, actor=actor, ts=now))
        if root is None:
            return RollbackReport(kind, name, version, to_version, target.source)
        if text is not None and destination is not None:
            path = root / destination
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            unlike = _drift(root, kind, name, target, to_version)
            return RollbackReport(kind, name, version, to_version, destination, written=True,
                                  deployed=fresh, warning=None if unlike is None else (
                                      f"{destination} was written but does not deploy as "
                                      f"v{to_version} ({unlike}); check it before the next "
                                      "deploy"))
        return RollbackReport(kind, name, version, to_version, target.source,
                              _drift(root, kind, name, target, to_version))

    def playbook(self, name: str, version: int, digest: str | None = None) -> Playbook:
        """A playbook as deployed at ``version``. With ``digest`` (what a run pinned), that
        content or an error; without, the content the store has for that version now."""
        if digest is not None:
            found = self._cache.get((name, version, digest))
            if found is not None:
                return found
        with self.store.read() as tx:
            row = tx.registry.get("playbook", name, version)
        if row is None:
            raise NotFound(f"playbook {name!r} has no version {version}")
        if digest is not None and row.digest != digest:
            raise InvalidState(f"playbook {name!r} v{version} is no longer the content this "
                               "run started with (was the store restored without its ledger?)")
        return self._playbook_of(row)

    def _playbook_of(self, row: DefinitionRow) -> Playbook:
        key = (row.name, row.version, row.digest)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _playbook(row)
            self._digests[id(found)] = row.digest
        return found

    def latest_playbook(self, name: str) -> Playbook:
        with self.store.read() as tx:
            row = tx.registry.latest("playbook", name)
        if row is None:
            raise NotFound(f"no playbook named {name!r} is deployed; run `soloist deploy` "
                           "after adding it to playbooks/")
        return self._playbook_of(row)

    def latest_playbooks(self) -> list[Playbook]:
        with self.store.read() as tx:
            rows = tx.registry.all_latest("playbook")
        return [self._playbook_of(r) for r in rows]

    def agent(self, name: str, version: int | None = None) -> Agent:
        """An agent as deployed: ``version``, or the newest."""
        with self.store.read() as tx:
            row = (tx.registry.latest("agent", name) if version is None
                   else tx.registry.get("agent", name, version))
        if row is None:
            raise NotFound(f"no agent named {name!r} is deployed"
                           + (f" at version {version}" if version is not None else ""))
        key = (name, row.version, row.digest)
        found = self._agents.get(key)
        if found is None:
            found = self._agents[key] = Agent.model_validate({**row.body,
                                                              "version": row.version})
        return found

    def pins_for(self, playbook: Playbook) -> dict[str, Any]:
        """The versions a new run of ``playbook`` starts with (and keeps)."""
        agents = sorted({step.agent for step in playbook.steps if step.agent})
        pins: dict[str, Any] = {"agents": {name: self.agent(name).version for name in agents}}
        if playbook.memory:
            pins["documents"] = self._document_versions(playbook.memory)
        digest_ = self._digests.get(id(playbook))
        if digest_ is not None:
            pins["playbook_digest"] = digest_
        return pins

    def _document_versions(self, names: Sequence[str]) -> dict[str, int]:
        """The newest version of each memory document named (one not written yet: none)."""
        found: dict[str, int] = {}
        with self.store.read() as tx:
            for name in names:
                rows = tx.documents.history(*split_name(name))
                if rows:
                    found[name] = rows[-1].version
        return found

    @staticmethod
    def pinned_digest(pins: Any) -> str | None:
        """The playbook digest a run pinned (runs older than pinning have none)."""
        found = pins.get("playbook_digest") if isinstance(pins, dict) else None
        return found if isinstance(found, str) else None

    def policies(self) -> Policies:
        with self.store.read() as tx:
            row = tx.registry.latest("policies", "policies")
        if row is None:
            return Policies()
        # Read on every step (a deploy applies at once); parsed once per version.
        kept = self._policies
        if kept is not None and kept[:2] == (row.version, row.digest):
            return kept[2]
        parsed = Policies.model_validate({**row.body, "version": row.version})
        self._policies = (row.version, row.digest, parsed)
        return parsed


def _playbook(row: DefinitionRow) -> Playbook:
    return Playbook.model_validate({**row.body, "version": row.version})


def _drift(root: Path, kind: str, name: str, target: DefinitionRow, to_version: int
           ) -> str | None:
    """Why the next deploy would undo a rollback to ``target``, or None if it would not."""
    where = target.source or f"the {kind} {name!r}"
    advice = (f"the next `soloist deploy` deploys it again; pass --write to write v{to_version}"
              " to the file, or change the file yourself")
    try:
        bodies = _bodies(root, None)
    except DefinitionError:
        return (f"the workspace's files do not deploy as they are, so {where} may still hold "
                f"newer content than v{to_version}: check it before the next deploy")
    on_disk = next((b for k, n, b, _ in bodies if (k, n) == (kind, name)), None)
    if on_disk is None:
        return None  # no file defines it any more: a deploy leaves it as it is
    if digest(on_disk) == target.digest:
        return None
    return f"{where} differs from v{to_version}: {advice}"


def _destination(root: Path, kind: str, name: str, target: DefinitionRow) -> str:
    """The file that defines ``kind name`` now (it may have moved since), else the one
    the version came from, or the usual place for it."""
    try:
        current = load_definitions(root).sources.get((kind, name))
    except DefinitionError:
        current = None
    usual = "policies.yaml" if kind == "policies" else f"{kind}s/{name}.yaml"
    return current or target.source or usual


def _yaml_text(kind: str, row: DefinitionRow, destination: str) -> str:
    """The deployed content of ``row`` as the YAML file it can be written back to."""
    import yaml

    if not destination.endswith((".yaml", ".yml")):
        raise InputError(f"{kind} {row.name!r} is defined in {destination}, not in a YAML "
                         "file; --write can only write YAML: change its Python definition "
                         "yourself")
    models: dict[str, type[Playbook | Agent | Policies]] = {
        "playbook": Playbook, "agent": Agent, "policies": Policies}
    model = models[kind]
    # Only what differs from the defaults: the file reads like one a person wrote, and it
    # deploys to the very same content (digest) as the version it comes from.
    body = model.model_validate({**row.body, "version": None}).model_dump(
        mode="json", exclude={"version"}, exclude_defaults=True)
    header = f"# {kind} {row.name} as of v{row.version}, written by `soloist rollback --write`\n"
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=1_000_000)
