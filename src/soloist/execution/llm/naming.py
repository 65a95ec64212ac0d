"""Reversible tool names: Soloist tools may be called ``crm.note``, but provider APIs accept
only ``[A-Za-z0-9_-]{1,64}``. A :class:`ToolNames` maps each name of one request to a
valid, unique wire name and back."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INVALID_CHAR = re.compile(r"[^A-Za-z0-9_-]")


class ToolNames:
    def __init__(self, names: Iterable[str] = ()) -> None:
        self._to_wire: dict[str, str] = {}
        self._from_wire: dict[str, str] = {}
        for name in names:
            self.wire(name)

    def wire(self, name: str) -> str:
        """The wire name of ``name`` (stable within this mapping)."""
        known = self._to_wire.get(name)
        if known is not None:
            return known
        candidate = name if _VALID.match(name) else _INVALID_CHAR.sub("_", name)[:64] or "tool"
        if candidate in self._from_wire:
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            candidate = f"{candidate[:55]}_{digest}"
        self._to_wire[name] = candidate
        self._from_wire[candidate] = name
        return candidate

    def original(self, wire_name: str) -> str:
        """The Soloist name of a wire name (unknown names are returned unchanged)."""
        return self._from_wire.get(wire_name, wire_name)
