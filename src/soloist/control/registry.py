"""Deploy, rollback and look up versioned definitions (playbooks, agents, policies).

A deploy validates the whole workspace first (nothing is deployed if any file is bad),
then records a new version of each definition whose content changed, with who deployed
it and when. A run pins the playbook version it started with; the catalog serves any
version from a cache, since versions never change once written.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soloist.control.agents import Agent
from soloist.control.checks import ToolNames
from soloist.control.loader import load_definitions
from soloist.control.playbooks import Playbook
from soloist.control.policies import Policies
from soloist.errors import InvalidState, NotFound
from soloist.store.base import DefinitionRow, NewEvent, Store

KINDS = ("playbook", "agent", "policies")


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class DeployReport:
    deployed: list[tuple[str, str, int]] = field(default_factory=list)  # kind, name, version
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)


def _bodies(root: Path, tools: ToolNames | None
            ) -> list[tuple[str, str, dict[str, Any], str | None]]:
    definitions = load_definitions(root, tools)
    out: list[tuple[str, str, dict[str, Any], str | None]] = []
    for name, playbook in sorted(definitions.playbooks.items()):
        out.append(("playbook", name, playbook.model_dump(mode="json", exclude={"version"}),
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
        self._cache: dict[tuple[str, int], Playbook] = {}
        self._agents: dict[tuple[str, int], Agent] = {}

    def deploy(self, root: Path, actor: str, tools: ToolNames | None = None) -> DeployReport:
        """Validate and version the workspace at ``root``; with ``tools``, also check that
        what the playbooks call exists (see :mod:`soloist.control.checks`)."""
        bodies = _bodies(root, tools)  # raises DefinitionError before anything is written
        report = DeployReport()
        now = time.time()
        with self.store.transaction() as tx:
            for kind, name, body, source in bodies:
                latest = tx.registry.latest(kind, name)
                fingerprint = digest(body)
                if latest is not None and latest.digest == fingerprint:
                    report.unchanged.append((kind, name, latest.version))
                    continue
                version = 1 if latest is None else latest.version + 1
                tx.registry.insert(DefinitionRow(kind, name, version, fingerprint, body, source,
                                                 actor, now, None))
                tx.events.append(NewEvent("registry.deployed", {
                    "kind": kind, "name": name, "version": version, "digest": fingerprint,
                    "source": source}, actor=actor, ts=now))
                report.deployed.append((kind, name, version))
        return report

    def rollback(self, kind: str, name: str, to_version: int, actor: str) -> int:
        """Deploy an older version again, as a new version; returns the new number."""
        if kind not in KINDS:
            raise NotFound(f"no definition kind {kind!r}; use one of {', '.join(KINDS)}")
        now = time.time()
        with self.store.transaction() as tx:
            target = tx.registry.get(kind, name, to_version)
            latest = tx.registry.latest(kind, name)
            if target is None or latest is None:
                raise NotFound(f"{kind} {name!r} has no version {to_version}")
            if latest.digest == target.digest:
                raise InvalidState(f"{kind} {name!r} v{latest.version} is already the same as "
                                   f"v{to_version}")
            version = latest.version + 1
            tx.registry.insert(DefinitionRow(kind, name, version, target.digest, target.body,
                                             target.source, actor, now,
                                             f"rollback to v{to_version}"))
            tx.events.append(NewEvent("registry.rollback", {
                "kind": kind, "name": name, "version": version, "from_version": to_version},
                actor=actor, ts=now))
        return version

    def playbook(self, name: str, version: int) -> Playbook:
        found = self._cache.get((name, version))
        if found is None:
            with self.store.read() as tx:
                row = tx.registry.get("playbook", name, version)
            if row is None:
                raise NotFound(f"playbook {name!r} has no version {version}")
            found = self._cache[(name, version)] = _playbook(row)
        return found

    def latest_playbook(self, name: str) -> Playbook:
        with self.store.read() as tx:
            row = tx.registry.latest("playbook", name)
        if row is None:
            raise NotFound(f"no playbook named {name!r} is deployed; run `soloist deploy` "
                           "after adding it to playbooks/")
        return self.playbook(name, row.version)

    def latest_playbooks(self) -> list[Playbook]:
        with self.store.read() as tx:
            rows = tx.registry.all_latest("playbook")
        return [self.playbook(r.name, r.version) for r in rows]

    def agent(self, name: str, version: int | None = None) -> Agent:
        """An agent as deployed: ``version``, or the newest."""
        found = self._agents.get((name, version)) if version is not None else None
        if found is not None:
            return found
        with self.store.read() as tx:
            row = (tx.registry.latest("agent", name) if version is None
                   else tx.registry.get("agent", name, version))
        if row is None:
            raise NotFound(f"no agent named {name!r} is deployed"
                           + (f" at version {version}" if version is not None else ""))
        found = Agent.model_validate({**row.body, "version": row.version})
        self._agents[(name, row.version)] = found
        return found

    def pins_for(self, playbook: Playbook) -> dict[str, Any]:
        """The versions a new run of ``playbook`` starts with (and keeps)."""
        agents = sorted({step.agent for step in playbook.steps if step.agent})
        return {"agents": {name: self.agent(name).version for name in agents}}

    def policies(self) -> Policies:
        with self.store.read() as tx:
            row = tx.registry.latest("policies", "policies")
        if row is None:
            return Policies()
        return Policies.model_validate({**row.body, "version": row.version})


def _playbook(row: DefinitionRow) -> Playbook:
    return Playbook.model_validate({**row.body, "version": row.version})
