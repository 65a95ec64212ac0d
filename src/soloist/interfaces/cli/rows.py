"""Rows of inputs from a file, for ``soloist run PLAYBOOK --each FILE``.

A CSV file's header names the inputs and each line after it is a run (an empty cell is an
input left out, so an optional one takes its default; a cell of an input the playbook
declares a number, an integer or a boolean is read as one); a JSON Lines file (``.jsonl``)
holds one JSON object a line. Each row is named ``FILE:LINE`` for the error of a row that does not
fit the playbook's inputs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from soloist import jsonvalues
from soloist.errors import InputError


def read_rows(path: Path, schema: dict[str, Any] | None = None
              ) -> list[tuple[str, dict[str, Any]]]:
    """The rows of ``path``; ``schema`` (the playbook's inputs) types a CSV's cells."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; save it as UTF-8 CSV or JSON Lines"
                         ) from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _json_lines(path, text)
    properties = (schema or {}).get("properties")
    types = {name: spec.get("type") for name, spec in properties.items()
             if isinstance(spec, dict)} if isinstance(properties, dict) else {}
    return [(where, {k: _typed(v, types.get(k)) for k, v in row.items()})
            for where, row in _csv(path, text)]


def _typed(cell: str, kind: Any) -> Any:
    """A cell as the type its input declares, when it reads as one (else as it is, for
    the inputs' check to name)."""
    text = cell.strip()
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind in ("integer", "number"):
        try:
            return int(text)
        except ValueError:
            pass
    if kind == "number":
        try:
            value = float(text)
        except ValueError:
            return cell
        return value if value == value and abs(value) != float("inf") else cell
    return cell


def _json_lines(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = jsonvalues.loads(line, where)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where} is not valid JSON: {exc.msg} at column {exc.colno}"
                             ) from None
        if not isinstance(value, dict):
            raise InputError(f"{where} must be a JSON object of inputs, like "
                             '{"name": "Ada"}')
        rows.append((where, value))
    return rows


def _csv(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path} is empty; its first line names the inputs") from None
    except csv.Error as exc:
        raise InputError(f"{path}:1 is not valid CSV: {exc}") from None
    names = [name.strip() for name in header]
    if not all(names):
        raise InputError(f"{path}:1: a column has no name; the first line names the inputs")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{path}:1: column {twice[0]!r} is named twice")
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        for cells in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(names):
                raise InputError(f"{where} has {len(cells)} cells but the header names "
                                 f"{len(names)} inputs")
            rows.append((where, {n: c for n, c in zip(names, cells, strict=False)
                                 if c.strip()}))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num} is not valid CSV: {exc}") from None
    return rows
