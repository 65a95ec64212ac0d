"""Memory as the workspace offers it to runs: the deploy's seed of ``memory/``, a run's
view of memory for python steps (``ctx.memory``), and document writes with provenance.

A run reads the versions of the documents it pinned (its playbook's ``memory:``), so an
edit deployed while it is in flight does not change what it reads; a run started after
the deploy reads the new version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from soloist.errors import InputError
from soloist.jsonvalues import check_finite

if TYPE_CHECKING:
    from soloist.control.registry import MemorySeeder
    from soloist.memory.documents import DocumentWrite
    from soloist.memory.search import MemoryHit
    from soloist.store.base import DocumentRow, FactRow
    from soloist.workspace.core import Workspace

MAX_SOURCES = 100


def seeder(ws: Workspace) -> MemorySeeder:
    """What writes the ``memory/`` folder's changes in a deploy's transaction."""
    from soloist.control.memory_files import MemoryFiles
    from soloist.memory.seed import FolderSeed

    def seed(files: MemoryFiles) -> FolderSeed:
        return FolderSeed(ws.memory, ws.documents, files)

    return seed


def pinned_version(pins: Mapping[str, Any] | None, namespace: str, key: str) -> int | None:
    """The version of document ``namespace/key`` that a run pinned, if it pinned one."""
    documents = (pins or {}).get("documents")
    found = documents.get(f"{namespace}/{key}") if isinstance(documents, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None


class RunMemory:
    """One run's view of memory (:class:`soloist.execution.memory_view.MemoryView`)."""

    def __init__(self, ws: Workspace, pins: Mapping[str, Any] | None) -> None:
        self._ws, self._pins = ws, pins

    def search(self, query: str, namespace: str = "*", k: int = 5) -> list[MemoryHit]:
        return self._ws.search_memory(query, namespace, k)

    def fact(self, namespace: str, subject: str, key: str) -> FactRow | None:
        return self._ws.get_fact(namespace, subject, key)

    def facts(self, namespace: str = "*") -> list[FactRow]:
        return self._ws.facts(namespace)

    def document(self, namespace: str, key: str) -> DocumentRow:
        return self._ws.document(namespace, key,
                                 version=pinned_version(self._pins, namespace, key))


def run_document(ws: Workspace, namespace: str, key: str, run_id: str | None) -> DocumentRow:
    """A document as run ``run_id`` reads it: its pinned version, else the newest."""
    pins = ws.get_run(run_id).pins if run_id else None
    return ws.document(namespace, key, version=pinned_version(pins, namespace, key))


def checked_sources(sources: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Provenance references (``{"kind": "email", "message_id": ...}``), checked."""
    if sources is None:
        return []
    if isinstance(sources, str | bytes) or not isinstance(sources, Sequence):
        raise InputError("sources must be a list of references such as "
                         '{"kind": "email", "message_id": "<...>"}')
    if len(sources) > MAX_SOURCES:
        raise InputError(f"a write names at most {MAX_SOURCES} sources, not {len(sources)}")
    for index, source in enumerate(sources):
        if not isinstance(source, dict) or not isinstance(source.get("kind"), str):
            raise InputError(f"sources[{index}] must be an object with a \"kind\" (email, "
                             "event, document, run...) and what identifies it")
        check_finite(source, f"sources[{index}]")
    return [dict(s) for s in sources]


def write_document(ws: Workspace, namespace: str, key: str, text: str, reason: str, *,
                   metadata: Mapping[str, Any] | None = None,
                   sources: Sequence[Any] | None = None, actor: str | None = None,
                   run_id: str | None = None, step_id: str | None = None,
                   once: str | None = None) -> DocumentWrite:
    """A new version of a document, with its provenance in its metadata's ``sources``.

    ``once``, an idempotency key, makes the write happen once: the reason carries the key,
    and a second call with it returns the first version, replayed.
    """
    from soloist.memory.documents import DocumentWrite
    from soloist.memory.facts import Cause

    for value, what in ((namespace, "namespace"), (key, "key")):
        if not value or len(value) > 200 or any(c in value for c in "\n\r\t"):
            raise InputError(f"the document's {what} {value!r} must be 1 to 200 characters "
                             "on one line")
    if not reason.strip():
        raise InputError("a memory write needs a reason")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InputError("a document's metadata must be an object")
    meta = dict(check_finite(dict(metadata or {}), "the document's metadata"))
    # Provenance given inside the metadata is checked like the argument.
    found = checked_sources(sources if sources is not None else meta.pop("sources", None))
    if found:
        meta["sources"] = found
    if once is not None:
        marker = f"[{once}]"
        reason = f"{reason} {marker}"
        with ws.store.read() as tx:
            rows = tx.documents.history(namespace, key)
        for row in reversed(rows):
            if row.reason.endswith(marker):
                return DocumentWrite(row, replayed=True)
    version = ws.documents.add(namespace, key, text,
                               Cause(ws.actor(actor), reason, run_id, step_id), meta)
    return DocumentWrite(ws.documents.get(namespace, key, version=version))
