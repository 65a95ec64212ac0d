"""Runs a page at a time, for the API and the dashboard: filters, and a cursor that says
where the previous page ended.

A cursor is the ``(created_at, id)`` of the last run shown, as opaque url-safe text: pages
stay stable while new runs arrive (they come before the first page, not inside a later
one), and a page never repeats or skips a run.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from soloist.errors import InputError
from soloist.orchestration.lifecycle import RunState
from soloist.store.base import RunFilter, RunRow, Store

MAX_PAGE = 500


@dataclass(frozen=True)
class RunsPage:
    runs: list[RunRow]
    next_cursor: str | None
    total: int | None = None  # how many match, when asked for


def encode_cursor(run: RunRow) -> str:
    raw = json.dumps([run.created_at, run.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        if isinstance(created_at, int | float) and isinstance(run_id, str):
            return float(created_at), run_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        pass
    raise InputError(f"{cursor!r} is not a cursor this API gave out; start from the first "
                     "page (no cursor)")


def check_filter(match: RunFilter) -> RunFilter:
    known = [s.value for s in RunState]
    if match.state is not None and match.state not in known:
        raise InputError(f"{match.state!r} is not a run state; use one of {', '.join(known)}")
    if match.since is not None and match.until is not None and match.until <= match.since:
        raise InputError("'until' must be after 'since'")
    return match


def page_runs(store: Store, match: RunFilter, cursor: str | None = None, limit: int = 50,
              *, count: bool = False) -> RunsPage:
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"the limit must be from 1 to {MAX_PAGE}, not {limit}")
    check_filter(match)
    before = decode_cursor(cursor) if cursor else None
    with store.read() as tx:
        rows = tx.runs.page(match, before=before, limit=limit + 1)
        total = tx.runs.count(match) if count else None
    more = len(rows) > limit
    rows = rows[:limit]
    return RunsPage(rows, encode_cursor(rows[-1]) if more else None, total)


def matching_ids(store: Store, match: RunFilter, ceiling: int) -> list[str]:
    """The ids of every run ``match`` matches, newest first (at most ``ceiling``, or an
    error saying to narrow the filter)."""
    ids: list[str] = []
    cursor = None
    while True:
        page = page_runs(store, match, cursor, MAX_PAGE)
        ids += [r.id for r in page.runs]
        if len(ids) > ceiling:
            raise InputError(f"the filter matches more than {ceiling} runs; narrow it "
                             "(a playbook, a state, a time range)")
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor
