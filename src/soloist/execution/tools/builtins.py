"""Tools every workspace has: enough to prove the interface and to write examples."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
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


STATE_DIR = ".soloist"  # the store and the secret key: never a file tool's target


def confine(path: str, workspace: str, roots: Sequence[str] = (),
            protected: Sequence[str] = ()) -> Path:
    """Where a file tool may write ``path``: its resolved location, or an error.

    A relative path is inside the workspace. The path is resolved with every symlink
    followed, so a link inside the workspace that points outside is judged by where it
    points. It must then lie in the workspace or in one of ``roots`` (policies.yaml
    ``file_roots``), and never in the workspace's ``.soloist/`` nor at a ``protected``
    path (the store's file and the secret key when they live elsewhere). A ``..`` is
    refused outright: a tool names its file, it does not climb to it.
    """
    where = "the workspace" + (f" or {', '.join(roots)}" if roots else "")
    if not path or "\x00" in path:
        raise DeterministicError(f"file path {path!r} is empty or holds a NUL character; "
                                 f"name a file in {where}.")
    raw = Path(path)
    if ".." in raw.parts:
        raise DeterministicError(f"file path {path!r} contains '..'; name the file in "
                                 f"{where} directly.")
    base = Path(os.path.realpath(workspace))
    resolved = Path(os.path.realpath(raw if raw.is_absolute() else base / raw))
    state = Path(os.path.realpath(base / STATE_DIR))
    if resolved.is_relative_to(state):
        raise DeterministicError(f"file path {path!r} is inside {STATE_DIR}/, which holds "
                                 "the store and the secret key; no tool writes there.")
    if any(resolved.is_relative_to(os.path.realpath(p)) for p in protected):
        raise DeterministicError(f"file path {path!r} is the workspace's store or secret "
                                 "key; no tool writes there.")
    allowed = [base, *(Path(os.path.realpath(root)) for root in roots)]
    if not any(resolved.is_relative_to(folder) for folder in allowed):
        shown = f" (it resolves to {resolved})" if str(resolved) != path else ""
        raise DeterministicError(
            f"file path {path!r}{shown} is outside {where}; name a file there, or add its "
            "folder to file_roots in policies.yaml.")
    return resolved


def _open_confined(target: Path) -> IO[str]:
    """Open ``target`` (already confined) to read and append, refusing a symlink that
    appeared there since it was resolved."""
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(target, flags, 0o644)
    except IsADirectoryError:
        raise DeterministicError(f"file path {str(target)!r} is a folder, not a file."
                                 ) from None
    except OSError as exc:
        raise DeterministicError(f"cannot open {str(target)!r}: {exc.strerror}.") from None
    return os.fdopen(fd, "a+", encoding="utf-8")


def append_line(path: str, line: str, call: ToolCall, roots: Sequence[str] = (),
                protected: Sequence[str] = ()) -> dict[str, Any]:
    """Append ``line`` to a confined file, once per idempotency key.

    The file is the external system here, so it honours keys the way a payment API does:
    a line tagged with a key already in the file is not written again.
    """
    target = confine(path, call.workspace, roots, protected)
    record = f"{call.idempotency_key}\t{line}".replace("\n", " ")
    tag = f"{call.idempotency_key}\t"
    with _open_confined(target) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            if any(existing.startswith(tag) for existing in handle):
                return {"path": str(target), "appended": False, "replayed": True,
                        "key": call.idempotency_key}
            handle.write(record + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return {"path": str(target), "appended": True, "key": call.idempotency_key}


def remove_line(path: str, key: str, call: ToolCall, roots: Sequence[str] = (),
                protected: Sequence[str] = ()) -> dict[str, Any]:
    """Remove the line that :func:`append_line` wrote under ``key`` (its compensation)."""
    target = confine(path, call.workspace, roots, protected)
    if not target.exists():
        return {"path": str(target), "removed": 0}
    tag = f"{key}\t"
    with _open_confined(target) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            lines = handle.readlines()
            kept = [line for line in lines if not line.startswith(tag)]
            if len(kept) != len(lines):
                handle.truncate(0)  # O_APPEND: the rewrite lands at the new end, 0
                handle.writelines(kept)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return {"path": str(target), "removed": len(lines) - len(kept)}


def file_append(path: str, line: str, call: ToolCall) -> dict[str, Any]:
    """``file.append`` for code that calls it directly: confined to the workspace."""
    return append_line(path, line, call)


def file_tools(roots: Iterable[str] = (), protected: Iterable[str] = ()) -> tuple[Tool, Tool]:
    """``file.append`` and its compensation ``file.unappend``, confined to the workspace
    and ``roots`` (policies.yaml ``file_roots``), never writing at a ``protected`` path."""
    folders, kept = tuple(roots), tuple(protected)

    def check(args: Mapping[str, Any], workspace: str) -> None:
        confine(str(args["path"]), workspace, folders, kept)

    @tool("file.append", effect="write", idempotent=True, check_args=check,
          compensate=("file.unappend", {"path": "{{ result.path }}", "key": "{{ result.key }}"}))
    def append(path: str, line: str, call: ToolCall) -> dict[str, Any]:
        """Append ``line`` to a file in the workspace, once per idempotency key.

        Relative paths are inside the workspace; a path outside it (symlinks followed)
        or in .soloist/ is refused unless policies.yaml lists its folder in file_roots.
        """
        return append_line(path, line, call, folders, kept)

    @tool("file.unappend", effect="write", idempotent=True, check_args=check)
    def unappend(path: str, key: str, call: ToolCall) -> dict[str, Any]:
        """Remove the line file.append wrote under an idempotency key (its undo)."""
        return remove_line(path, key, call, folders, kept)

    return spec_of(append), spec_of(unappend)


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
    *(spec_of(fn) for fn in (sleep, note, time_now, code_run)),
    *file_tools(),  # the workspace only: builtin_registry(file_roots=...) adds folders
    http_request_tool(),  # reaches no host: builtin_registry(allowed_hosts=...) configures it
)


def builtin_registry(allowed_hosts: Iterable[str] = (),
                     file_roots: Iterable[str] = ()) -> ToolRegistry:
    """Every built-in tool; ``http.request`` may reach only ``allowed_hosts`` (see http.py),
    the file tools only the workspace and ``file_roots``."""
    registry = ToolRegistry()
    for spec in BUILTINS:
        registry.add(spec)
    registry.add(http_request_tool(allowed_hosts))
    for spec in file_tools(file_roots):
        registry.add(spec)
    return registry
