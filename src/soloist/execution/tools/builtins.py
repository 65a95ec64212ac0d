"""Tools every workspace has: enough to prove the interface and to write examples."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soloist.errors import DeterministicError
from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Tool, ToolRegistry, spec_of, tool
from soloist.execution.tools.code import code_run
from soloist.execution.tools.http import http_request_tool


@tool("sleep", effect="read")
def sleep(seconds: float = 0.0) -> dict[str, Any]:
    """Wait ``seconds`` seconds (at most an hour)."""
    if not 0 <= float(seconds) <= 3600:
        raise DeterministicError("sleep takes between 0 and 3600 seconds")
    time.sleep(float(seconds))
    return {"slept": float(seconds)}


@tool("note", effect="write", idempotent=True)
def note(text: str, call: ToolCall) -> dict[str, Any]:
    """Record a note in the run's log (the dispatch event carries it)."""
    return {"note": str(text), "key": call.idempotency_key}


@tool("file.append", effect="write", idempotent=True)
def file_append(path: str, line: str, call: ToolCall) -> dict[str, Any]:
    """Append ``line`` to a file, once per idempotency key.

    The file is the external system here, so it honours keys the way a payment API does:
    a line tagged with a key already in the file is not written again. Relative paths are
    inside the workspace.
    """
    target = Path(path)
    if not target.is_absolute():
        target = Path(call.workspace) / target
    target.parent.mkdir(parents=True, exist_ok=True)
    record = f"{call.idempotency_key}\t{line}".replace("\n", " ")
    tag = f"{call.idempotency_key}\t"
    with open(target, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            if any(existing.startswith(tag) for existing in handle):
                return {"path": str(target), "appended": False, "replayed": True}
            handle.write(record + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return {"path": str(target), "appended": True}


@tool("time.now", effect="read")
def time_now(timezone: str | None = None) -> dict[str, Any]:
    """The current time: ISO 8601 in UTC and in ``timezone`` (an IANA name), and Unix time.

    ``iso`` is in ``timezone`` when one is given, in UTC otherwise.
    """
    now = datetime.now(UTC)
    zone_name = "UTC"
    local = now
    if timezone is not None and timezone not in ("UTC", "Z"):
        try:
            local = now.astimezone(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise DeterministicError(f"time.now does not know the time zone {timezone!r}; "
                                     "use an IANA name such as 'Europe/Paris'.") from None
        zone_name = timezone
    return {
        "iso": local.isoformat(),
        "utc": now.isoformat(),
        "epoch": now.timestamp(),
        "timezone": zone_name,
    }


BUILTINS: tuple[Tool, ...] = (
    *(spec_of(fn) for fn in (sleep, note, file_append, time_now, code_run)),
    http_request_tool(),  # reaches no host: builtin_registry(allowed_hosts=...) configures it
)


def builtin_registry(allowed_hosts: Iterable[str] = ()) -> ToolRegistry:
    """Every built-in tool; ``http.request`` may reach only ``allowed_hosts`` (see http.py)."""
    registry = ToolRegistry()
    for spec in BUILTINS:
        registry.add(spec)
    registry.add(http_request_tool(allowed_hosts))
    return registry
