"""Where a table or a key is written in a TOML text (tomllib keeps no positions).

Good enough for error messages, not a parser: it reads table headers (``[a.b]``,
``[[a]]``), ``key = value`` lines with bare, quoted and dotted keys, and the keys of a
one-line inline table; it skips multi-line strings and arrays. A key it cannot place
points at the nearest enclosing table it can.
"""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_KEY = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=\s*")
_PART = re.compile(_KEY)

Path = tuple[str, ...]


def _parts(dotted: str) -> Path:
    out = []
    for match in _PART.finditer(dotted):
        key = match.group(0)
        if key[0] in "\"'":
            key = key[1:-1]
            if match.group(0)[0] == '"':
                key = key.encode().decode("unicode_escape") if "\\" in key else key
        out.append(key)
    return tuple(out)


def _depth_change(value: str) -> int:
    """How many ``[``/``{`` a value leaves open (outside strings and comments)."""
    depth, quote, i = 0, "", 0
    while i < len(value):
        char = value[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        i += 1
    return depth


def _inline_keys(value: str) -> list[Path]:
    """The keys of a one-line inline table ``{a = 1, b.c = 2}`` (not of nested ones)."""
    if not value.lstrip().startswith("{"):
        return []
    return [_parts(m.group(1)) for m in re.finditer(rf"[{{,]\s*({_DOTTED})\s*=", value)]


def positions(text: str) -> dict[Path, int]:
    """The first line (from 1) that names each table or key path in ``text``."""
    found: dict[Path, int] = {}
    table: Path = ()
    depth = 0
    multiline = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if multiline:
            if multiline in line:
                multiline = ""
            continue
        if depth > 0:
            depth += _depth_change(line)
            continue
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(2))
            found.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        path = table + _parts(assign.group(1))
        for end in range(len(table) + 1, len(path) + 1):
            found.setdefault(path[:end], number)
        value = line[assign.end():]
        for inner in _inline_keys(value):
            found.setdefault(path + inner, number)
        for quotes in ('"""', "'''"):
            if value.lstrip().startswith(quotes) and value.count(quotes) == 1:
                multiline = quotes
        depth = max(0, _depth_change(value))
    return found


def line_of(text: str, path: Path) -> int | None:
    """The line of ``path``, else of the nearest enclosing table or key that is written."""
    found = positions(text)
    for end in range(len(path), 0, -1):
        prefix = path[:end]
        if prefix in found:
            return found[prefix]
        # a table written only through its sub-tables ([llm.tiers] for [llm])
        inside = [line for key, line in found.items() if key[:end] == prefix]
        if inside:
            return min(inside)
    return None
