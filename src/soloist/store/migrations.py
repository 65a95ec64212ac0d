"""Numbered SQL migrations, one folder per backend, applied in order and recorded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(package: str) -> list[Migration]:
    """The migrations shipped in ``package`` (a ``migrations`` folder), in order."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements; a ``BEGIN ... END;`` trigger body stays whole."""
    statements: list[str] = []
    current: list[str] = []
    depth = 0
    for line in sql.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        upper = stripped.upper()
        if re.search(r"\bBEGIN\b", upper) and not upper.startswith("BEGIN TRANSACTION"):
            depth += 1
        if re.search(r"\bEND;\s*$", upper) and depth:
            depth -= 1
        if stripped.endswith(";") and depth == 0:
            statements.append("\n".join(current))
            current = []
    if current and "".join(current).strip():
        statements.append("\n".join(current))
    return statements
