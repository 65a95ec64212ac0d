"""How the CLI prints: Rich tables for people, one JSON document with --json.

Everything shown comes from :func:`text` (or :func:`plain` for ``typer.echo``): a value from
data becomes plain text with its active characters escaped (:mod:`soloist.control.display`)
and never Rich markup, so ``[/]`` in an input cannot crash a listing, ``[conceal]`` cannot
hide an amount and a newline cannot forge a line. Style comes only from :func:`styled`, over
the CLI's own words. The console and the tables of this module enforce it: a ``str`` given
to them is data, not markup.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from soloist.control import display

ELLIPSIS = "…"


def plain(value: Any, width: int | None = None) -> str:
    """``value`` as one line of text fit to show: a string as it is, anything else as JSON,
    then every active character escaped; cut to ``width`` characters when given."""
    raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                          default=str)
    if width is not None:
        raw = raw[: width + 1]  # escaping only lengthens: this still fills (and cuts) the width
    shown = display.escape(raw)
    if width is not None and len(shown) > width:
        return shown[: max(width - 1, 0)] + ELLIPSIS
    return shown


def text(value: Any, width: int | None = None, style: StyleType = "") -> Text:
    """The one way a value from data becomes display text: :func:`plain`, as a Rich
    :class:`Text` (never parsed as markup)."""
    return value.copy() if isinstance(value, Text) else Text(plain(value, width), style=style)


def styled(value: Any, style: StyleType) -> Text:
    """``value`` shown as :func:`text` does, in ``style``."""
    return text(value, style=style)


def block(value: str) -> str:
    """A multi-line text (a document) fit to print: its line breaks and tabs kept, every
    other active character escaped (a carriage return too, unless it ends a CRLF line)."""
    return display.escape(value.replace("\r\n", "\n"), keep="\n\t")


def json_line(value: Any) -> str:
    """``value`` as one line of JSON, every active character inside it a ``\\u`` escape."""
    return display.escape_json(json.dumps(value, ensure_ascii=False, default=str))


def line(*parts: Any) -> Text:
    """One line from parts: a :class:`Text` as it is (styled), anything else through
    :func:`text`."""
    return Text.assemble(*(text(part) for part in parts))


class SafeConsole(Console):
    """A console for which a printed ``str`` is data: escaped, never markup."""

    def print(self, *objects: Any, **options: Any) -> None:
        super().print(*(text(o) if isinstance(o, str) else o for o in objects), **options)


def console() -> SafeConsole:
    return SafeConsole(highlight=False, soft_wrap=True, markup=False, emoji=False)


class SafeTable(Table):
    """A table whose cells are data (see :func:`text`), with identifier columns that are
    never cut or wrapped: other columns shrink when the terminal is narrow."""

    def __init__(self, *args: Any, ids: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.id_columns = set(ids)

    def add_column_for(self, header: str) -> None:
        if header in self.id_columns:
            self.add_column(header, no_wrap=True, min_width=cell_len(header))
        else:
            # Folded, not cut with an ellipsis: a narrow column still shows all it holds.
            self.add_column(header, overflow="fold")

    def add_row(self, *renderables: RenderableType | None, style: StyleType | None = None,
                end_section: bool = False) -> None:
        cells = [None if cell is None else text(cell) if isinstance(cell, str | Text) else cell
                 for cell in renderables]
        for column, cell in zip(self.columns, cells, strict=False):
            if isinstance(cell, Text) and column.header in self.id_columns:
                column.min_width = max(column.min_width or 0, cell.cell_len)
        super().add_row(*cells, style=style, end_section=end_section)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(to_jsonable(value), indent=2, default=str))


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    delta = time.time() - ts
    if delta < 60:
        return f"{delta:.0f}s ago"
    if delta < 3600:
        return f"{delta / 60:.0f}m ago"
    if delta < 86400:
        return f"{delta / 3600:.0f}h ago"
    return f"{delta / 86400:.0f}d ago"


def duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = end - start
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


STATE_STYLE = {
    "done": "green", "running": "cyan", "failed": "red", "cancelled": "yellow",
    "compensating": "magenta", "awaiting_approval": "bold yellow", "compensated": "magenta",
    "waiting": "cyan", "skipped": "dim", "executing": "cyan", "persisting": "cyan", "ready": "blue",
    "scheduled": "dim",
}


def state(value: str) -> Text:
    return styled(value, STATE_STYLE.get(value, ""))


def table(*columns: str, title: str | None = None, ids: Collection[str] = ()) -> SafeTable:
    """A table of data; the columns named in ``ids`` hold identifiers (shown whole)."""
    out = SafeTable(title=title, title_justify="left", header_style="bold", ids=ids)
    for column in columns:
        out.add_column_for(column)
    return out


def short(value: Any, width: int = 60) -> str:
    """:func:`plain`, cut to ``width`` characters."""
    return plain(value, width)
