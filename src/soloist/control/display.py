"""Text from data, made fit to show a person.

Inputs, outputs, agents, memory and external systems can put any character into a string.
Shown raw, some of them act on the screen instead of being read: a newline or a carriage
return starts or overwrites a line (a forged intent above the real one), an escape sequence
clears the screen, moves the cursor or hides a link, a bidi override reverses what follows,
a zero-width character hides a difference. :func:`escape` writes each such character as a
visible escape (``\\n``, ``\\x1b``, ``\\u202e``), so the text means what it shows; every
interface (the CLI's :mod:`soloist.interfaces.cli.render`, later the dashboard and the API's
summaries) shows data through it. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Printable ASCII is always safe; only the rest needs a look, so mostly-ASCII text is fast.
_CANDIDATE = re.compile(r"[^\x20-\x7e]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control (C0, DEL, C1), format (bidi embeddings, overrides and isolates, zero-width
# characters, the BOM, tag characters), lone surrogates (which cannot even be encoded),
# and the Unicode line and paragraph separators, which some terminals break lines at.
_ACTIVE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@lru_cache(maxsize=4096)
def _shown(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    if unicodedata.category(char) not in _ACTIVE_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def is_active(char: str) -> bool:
    """Whether ``char`` would act on a terminal (or hide itself) rather than be read."""
    return _shown(char) != char


def escape(text: str, keep: str = "") -> str:
    """``text`` with every active character written as a visible escape.

    ``keep`` names characters to leave as they are (``"\\n\\t"`` for a document shown as a
    block of lines); a gate message, a table cell or an intent keeps none, so it is exactly
    one line. Backslashes are left alone: a literal ``\\n`` in the data reads the same as an
    escaped newline, and either way it is on the same line, in plain sight.
    """

    def one(match: re.Match[str]) -> str:
        char = match.group()
        return char if char in keep else _shown(char)

    return _CANDIDATE.sub(one, text)


def one_line(text: str) -> str:
    """``text`` stripped of surrounding whitespace, escaped onto exactly one line."""
    return escape(text.strip())


def fold(source: str) -> str:
    """A template's own line breaks made spaces, so a message written over several YAML lines
    renders on one; a line break that is still there after rendering came from data."""
    return " ".join(line.strip() for line in source.splitlines() if line.strip())


def escape_json(encoded: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with every active character
    written as a JSON ``\\u`` escape: still valid JSON, still the same value, safe to show."""

    def one(match: re.Match[str]) -> str:
        char = match.group()
        if not is_active(char):
            return char
        code = ord(char)
        if code > 0xFFFF:  # JSON spells a character beyond the BMP as a surrogate pair
            code -= 0x10000
            return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
        return f"\\u{code:04x}"

    return _CANDIDATE.sub(one, encoded)
