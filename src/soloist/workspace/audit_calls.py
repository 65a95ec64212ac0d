"""The calls that only read, in the episodic log: an interface that lets a client read the
workspace (MCP) says who read what, as the write paths already say who changed what.

One event per call, in its own small transaction; the arguments are what the caller sent
(names, queries, ids), never a secret value: no read tool takes one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from soloist.store.base import NewEvent

if TYPE_CHECKING:
    from soloist.workspace.core import Workspace


def record_call(ws: Workspace, kind: str, tool: str, arguments: Mapping[str, Any],
                actor: str) -> None:
    """Append ``kind`` {tool, arguments} under ``actor`` (``token:NAME``, ``person:NAME``)."""
    with ws.store.transaction() as tx:
        tx.events.append(NewEvent(kind, {"tool": tool, "arguments": dict(arguments)},
                                  actor=actor, ts=time.time()))
