"""What a python step reads from memory: ``ctx.memory``.

Reads only, at once; a step changes memory as it changes anything, by staging an intent
(``ctx.stage("memory.put", ...)``, ``ctx.stage("memory.write", ...)``) that is checked,
possibly approved, then dispatched. The workspace implements the view (the execution plane
cannot import it); a run's view reads the versions of documents the run pinned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from soloist.memory.search import MemoryHit
from soloist.store.base import DocumentRow, FactRow


class MemoryView(Protocol):
    def search(self, query: str, namespace: str = "*", k: int = 5) -> list[MemoryHit]:
        """The ``k`` best documents and facts for ``query`` in the namespaces of a glob."""
        ...

    def fact(self, namespace: str, subject: str, key: str) -> FactRow | None:
        """The current version of a fact (``.value``), or None."""
        ...

    def facts(self, namespace: str = "*") -> list[FactRow]:
        """The current facts of the namespaces matching a glob (``services``, ``leads/*``)."""
        ...

    def document(self, namespace: str, key: str) -> DocumentRow:
        """A document (``.text``): the version the run pinned, if it pinned one (its
        playbook's ``memory:``), else the newest; NotFound if there is none."""
        ...


#: (run id, the run's pins) -> the run's view of memory
MemoryViews = Callable[[str, Mapping[str, Any] | None], MemoryView]
