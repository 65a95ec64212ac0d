"""The workspace's memory services: what `soloist memory`, the API, the dashboard and the
agents' memory tools all call (plain arguments and an actor, a person by default, from
which each method builds the cause of its write). A part of :class:`Workspace`, kept in
its own module."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from soloist.errors import InputError

if TYPE_CHECKING:
    from soloist.memory.documents import Documents, DocumentWrite
    from soloist.memory.facts import Cause, Explanation, FactWrite, Memory
    from soloist.memory.search import MemoryHit
    from soloist.store.base import DocumentRow, FactRow
    from soloist.workspace.core import Workspace


def positive(number: int, what: str) -> None:
    if number < 1:
        raise InputError(f"{what} must be at least 1, not {number}")


class MemoryMethods:
    """Facts, documents, search and provenance, over the workspace's memory services."""

    if TYPE_CHECKING:  # given by Workspace
        @property
        def memory(self) -> Memory: ...
        @property
        def documents(self) -> Documents: ...
        def actor(self, actor: str | None) -> str: ...

    def search_memory(self, query: str, namespace: str = "*", k: int = 10, *,
                      subject: str | None = None, since: float | None = None,
                      until: float | None = None, recency_days: float | None = None,
                      as_of: float | None = None) -> list[MemoryHit]:
        """The ``k`` best documents and facts for ``query`` in the namespaces of a glob
        (see memory/search.py for what each filter keeps)."""
        from soloist.memory.search import search_memory

        positive(k, "the number of hits")
        return search_memory(self.memory, self.documents, query, namespace, k,
                             subject=subject, since=since, until=until,
                             recency_days=recency_days, as_of=as_of)

    def get_fact(self, namespace: str, subject: str, key: str, *,
                 as_of: float | None = None) -> FactRow | None:
        """The current version of a fact (or the one current at ``as_of``), or None."""
        return self.memory.get(namespace, subject, key, as_of=as_of)

    def fact_history(self, namespace: str, subject: str, key: str) -> list[FactRow]:
        """Every version of a fact, oldest first; NotFound if it was never written."""
        return self.memory.history(namespace, subject, key)

    def put_fact(self, namespace: str, subject: str, key: str, value: Any, reason: str, *,
                 actor: str | None = None, run_id: str | None = None,
                 step_id: str | None = None, once: str | None = None,
                 sources: Sequence[Any] | None = None) -> FactWrite:
        """A new version of the fact, caused by ``actor`` (and the run step that wrote it),
        drawn from ``sources`` (references kept with it: its provenance).

        ``once``, an idempotency key, makes the write happen once: the reason carries the
        key, and a second call with it returns the first version, replayed.
        """
        from soloist.workspace.memory_access import checked_sources

        found = checked_sources(sources)
        return self._write_fact(namespace, subject, key, reason, actor, run_id, step_id, once,
                                lambda cause: self.memory.put(namespace, subject, key, value,
                                                              cause, sources=found))

    def forget_fact(self, namespace: str, subject: str, key: str, reason: str, *,
                    actor: str | None = None, run_id: str | None = None,
                    step_id: str | None = None, once: str | None = None) -> FactWrite:
        """Mark the fact as no longer true; it stays in its history."""
        return self._write_fact(namespace, subject, key, reason, actor, run_id, step_id, once,
                                lambda cause: self.memory.forget(namespace, subject, key,
                                                                 cause))

    def _write_fact(self, namespace: str, subject: str, key: str, reason: str,
                    actor: str | None, run_id: str | None, step_id: str | None,
                    once: str | None, write: Callable[[Cause], FactRow]) -> FactWrite:
        from soloist.memory.facts import Cause, FactWrite

        if once is not None:
            marker = f"[{once}]"
            reason = f"{reason} {marker}"
            for row in reversed(self.memory.history_or_empty(namespace, subject, key)):
                if row.reason.endswith(marker):
                    return FactWrite(row, replayed=True)
        return FactWrite(write(Cause(self.actor(actor), reason, run_id, step_id)))

    def why(self, namespace: str, subject: str, key: str) -> list[Explanation]:
        """Why we believe it: each version with the events of the step that wrote it."""
        return self.memory.why(namespace, subject, key)

    def revert_run(self, run_id: str, reason: str, *, actor: str | None = None
                   ) -> tuple[list[FactRow], list[str]]:
        """Undo every memory write of one run, as new versions; also the facts left as
        they are because a later write changed them again."""
        from soloist.memory.facts import Cause

        return self.memory.revert_run(run_id, Cause(self.actor(actor), reason))

    def revert_fact(self, namespace: str, subject: str, key: str, version: int, reason: str,
                    *, actor: str | None = None) -> FactRow:
        """Bring one fact back to the value of an older ``version``, as a new version."""
        from soloist.memory.facts import Cause

        positive(version, "the version")
        return self.memory.revert_to(namespace, subject, key, version,
                                     Cause(self.actor(actor), reason))

    def facts(self, namespace: str = "*") -> list[FactRow]:
        """The current facts of the namespaces matching a glob (``leads/*``)."""
        return self.memory.facts(namespace)

    def import_memory(self, path: Path | str, namespace: str | None = None, *,
                      actor: str | None = None) -> dict[str, int]:
        """Facts and documents from a JSONL file or a folder of Markdown; a bad line stops
        the import before any write. How many of each were imported."""
        from soloist.memory.transfer import import_file

        return import_file(Path(path), self.memory, self.documents, self.actor(actor),
                           namespace)

    def export_memory(self, namespace: str = "*") -> Iterator[str]:
        """The current facts and documents as JSONL lines that import takes again."""
        from soloist.memory.transfer import export_lines

        return export_lines(self.memory, self.documents, namespace)

    def document(self, namespace: str, key: str, *, version: int | None = None,
                 as_of: float | None = None) -> DocumentRow:
        """A document's newest version, its ``version``, or the one newest at ``as_of``."""
        return self.documents.get(namespace, key, version=version, as_of=as_of)

    def write_document(self, namespace: str, key: str, text: str, reason: str,
                       **caused: Any) -> DocumentWrite:
        """A new version of a document (see memory_access.write_document: ``metadata``,
        ``sources``, ``actor``, ``run_id``, ``step_id``, ``once``)."""
        from soloist.workspace.memory_access import write_document

        return write_document(cast("Workspace", self), namespace, key, text, reason, **caused)

    def run_document(self, namespace: str, key: str, run_id: str | None = None
                     ) -> DocumentRow:
        """A document as run ``run_id`` reads it: the version it pinned, else the newest."""
        from soloist.workspace.memory_access import run_document

        return run_document(cast("Workspace", self), namespace, key, run_id)

    def document_history(self, namespace: str, key: str) -> list[DocumentRow]:
        """Every version of a document, oldest first, with who wrote it and why."""
        return self.documents.history(namespace, key)

    def memory_status(self) -> dict[str, Any]:
        """Which model memory's vectors come from, how many chunks have one, how they are
        searched."""
        return self.documents.status()

    def reembed(self, progress: Callable[[int], None] | None = None) -> int:
        """Make every current chunk's vector anew with the configured embedder; how many."""
        return self.documents.reembed(progress=progress)
