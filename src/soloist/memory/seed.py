"""Seed memory from a workspace's ``memory/`` folder, as part of a deploy.

A document or fact gets a new version when its file's content differs from the version the
last deploy wrote of it (for one no deploy wrote yet: from its newest version, so a text
imported before is not written twice). Versions written since by a person or an agent are
left as they are until the file changes again. Each version deployed records the deployer
as its actor and ``deployed from memory/...`` as its reason. A file removed from
``memory/`` changes nothing: what it deployed stays in memory, with its history.
"""

from __future__ import annotations

import json
from typing import Any

from soloist.control.memory_files import MemoryDocument, MemoryFact, MemoryFiles
from soloist.memory.documents import Documents, StagedDocuments
from soloist.memory.facts import Cause, Memory, is_current
from soloist.store.base import DocumentRow, FactRow, NewEvent, Transaction

DEPLOYED = "deployed from "
Versioned = tuple[str, str, int]  # kind, name, version


def reason_for(source: str) -> str:
    return f"{DEPLOYED}{source}"


def _deployed_or_newest(rows: list[Any]) -> Any | None:
    """The newest version a deploy wrote, else the newest of all (rows oldest first)."""
    deployed = [r for r in rows if r.reason.startswith(DEPLOYED)]
    return deployed[-1] if deployed else (rows[-1] if rows else None)


def _same_value(a: Any, b: Any) -> bool:
    # JSON equality: True is not 1, 1.0 is 1 (as the store keeps them).
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class FolderSeed:
    """The documents of ``files`` that changed, chunked and embedded now (outside the
    deploy's transaction), and its facts; :meth:`write` checks each again and writes."""

    def __init__(self, memory: Memory, documents: Documents, files: MemoryFiles) -> None:
        self.memory, self.documents, self.files = memory, documents, files
        with documents.store.read() as tx:
            changed = [d for d in files.documents if self._differs(tx, d)]
        self.staged: dict[str, StagedDocuments] = {
            d.name: documents.stage([(d.namespace, d.key, d.text, {"source": d.source})])
            for d in changed}

    @staticmethod
    def _differs(tx: Transaction, document: MemoryDocument) -> bool:
        row: DocumentRow | None = _deployed_or_newest(
            tx.documents.history(document.namespace, document.key))
        return row is None or row.text != document.text

    def write(self, tx: Transaction, actor: str, now: float
              ) -> tuple[list[Versioned], list[Versioned]]:
        deployed: list[Versioned] = []
        unchanged: list[Versioned] = []
        for document in self.files.documents:
            staged = self.staged.get(document.name)
            if staged is None or not self._differs(tx, document):
                rows = tx.documents.history(document.namespace, document.key)
                unchanged.append(("memory", document.name, rows[-1].version))
                continue
            reason = reason_for(document.source)
            [version] = self.documents.write_staged(tx, staged, Cause(actor, reason))
            tx.events.append(NewEvent("memory.deployed", {
                "namespace": document.namespace, "key": document.key, "version": version,
                "source": document.source, "reason": reason}, actor=actor, ts=now))
            deployed.append(("memory", document.name, version))
        for fact in self.files.facts:
            version, wrote = self._fact(tx, fact, actor, now)
            (deployed if wrote else unchanged).append(("fact", fact.name, version))
        return deployed, unchanged

    def _fact(self, tx: Transaction, fact: MemoryFact, actor: str, now: float
              ) -> tuple[int, bool]:
        rows = tx.facts.history(fact.namespace, fact.subject, fact.key)
        row: FactRow | None = _deployed_or_newest(rows)
        if row is not None and _same_value(row.value, fact.value) and (
                row is not rows[-1] or is_current(row, now)):
            return rows[-1].version, False
        written = self.memory.put_in(tx, fact.namespace, fact.subject, fact.key, fact.value,
                                     Cause(actor, reason_for(fact.source)))
        return written.version, True
