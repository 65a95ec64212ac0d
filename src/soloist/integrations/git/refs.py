"""The refs of a remote repository, as a cursor for the ``git.pushed`` trigger.

:func:`ls_remote` reads a remote's branches and tags (``git ls-remote``) into a plain
``{ref: sha}`` mapping: JSON as it is, so it can be stored as a connector cursor.
:func:`changed_refs` compares a stored cursor with a fresh reading and gives each ref that
was created, moved or deleted since, so a poller emits one event per change and then stores
the new reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from soloist.integrations.git.command import environment, redact, run, safe_value

__all__ = ["RefChange", "changed_refs", "ls_remote"]


@dataclass(frozen=True)
class RefChange:
    """One ref that changed: ``old`` is ``None`` when it was created, ``new`` when deleted."""

    ref: str
    old: str | None
    new: str | None


def ls_remote(
    url: str,
    *,
    home: Path,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 60.0,
) -> dict[str, str]:
    """The remote's branches and tags (``refs/heads/*``, ``refs/tags/*``) and their commits
    (for an annotated tag, the tag object's id)."""
    safe_value("remote URL", url)
    secrets = tuple(s for s in (password,) if s)
    env = environment(home, username=username if password is not None else None,
                      password=password)
    done = run(("ls-remote", "--heads", "--tags", "--refs", "--", url), cwd=home, env=env,
               timeout=timeout, what=f"list the refs of {redact(url, secrets)}", secrets=secrets)
    refs: dict[str, str] = {}
    for line in done.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref:
            refs[ref] = sha
    return refs


def changed_refs(cursor: Mapping[str, str] | None, current: Mapping[str, str]) -> list[RefChange]:
    """The refs created, moved or deleted between ``cursor`` (``None``: never read, so every
    ref is new) and ``current``, in ref order."""
    before = cursor or {}
    changes = []
    for ref in sorted(set(before) | set(current)):
        old, new = before.get(ref), current.get(ref)
        if old != new:
            changes.append(RefChange(ref, old, new))
    return changes
