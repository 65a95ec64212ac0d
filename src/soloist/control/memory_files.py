"""A workspace's ``memory/`` folder: the documents and facts a deploy seeds memory with.

``memory/<namespace>/<key>.md`` is a document: its namespace is the folder path under
``memory/`` (``memory/portfolio/fintech-app.md`` is ``portfolio``/``fintech-app``), its
text the file. ``memory/<namespace>/<any name>.yaml`` holds facts of that namespace, as a
mapping of subject to a mapping of key to value (``memory/services/rates.yaml`` holds
facts of ``services``); the file's name only groups them. Problems read like every other
definition's, ``memory/path:LINE:COLUMN: what is wrong``, and all are found before a
deploy writes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soloist.control.loader import parse_yaml
from soloist.control.playbooks import MEMORY_PART as _SEGMENT
from soloist.control.safe_yaml import MAX_FILE_BYTES, too_big

FOLDER = "memory"
_FACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$")


@dataclass(frozen=True)
class MemoryDocument:
    namespace: str
    key: str
    text: str
    source: str  # the file, relative to the workspace

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.key}"


@dataclass(frozen=True)
class MemoryFact:
    namespace: str
    subject: str
    key: str
    value: Any
    source: str

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.subject}/{self.key}"


@dataclass(frozen=True)
class MemoryFiles:
    """What ``memory/`` holds, valid: the documents and facts a deploy compares with memory."""

    documents: list[MemoryDocument] = field(default_factory=list)
    facts: list[MemoryFact] = field(default_factory=list)

    def document_names(self) -> set[str]:
        return {d.name for d in self.documents}


def split_name(name: str) -> tuple[str, str]:
    """``namespace/key`` of a document (the namespace may itself hold slashes)."""
    namespace, _, key = name.rpartition("/")
    return namespace, key


def load_memory(root: Path, problems: list[str]) -> MemoryFiles:
    """The documents and facts under ``root/memory``; each problem is added to ``problems``."""
    folder = root / FOLDER
    if not folder.is_dir():
        return MemoryFiles()
    documents: list[MemoryDocument] = []
    facts: list[MemoryFact] = []
    seen: dict[str, str] = {}  # fact name -> the file that first gave it
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(root).as_posix()
        parts = file.relative_to(folder).parts
        # Editors and sync tools leave hidden copies next to real files.
        if any(p.startswith(".") for p in parts) or not file.is_file():
            continue
        if file.suffix not in (".md", ".yaml", ".yml"):
            continue
        namespace = "/".join(parts[:-1])
        if not namespace:
            problems.append(f"{relative}:1:1: a memory file belongs in a folder that names its "
                            f"namespace (memory/portfolio/{file.name}, say)")
            continue
        bad = next((p for p in parts[:-1] if not _SEGMENT.match(p)), None)
        if bad is not None:
            problems.append(f"{relative}:1:1: the folder name {bad!r} cannot be a namespace "
                            "part (letters, digits, '.', '_' and '-', starting with a letter "
                            "or digit)")
            continue
        text = _read(file, relative, problems)
        if text is None:
            continue
        if file.suffix == ".md":
            if not _SEGMENT.match(file.stem):
                problems.append(f"{relative}:1:1: the file name {file.stem!r} cannot be a "
                                "document key (letters, digits, '.', '_' and '-')")
            elif not text.strip():
                problems.append(f"{relative}:1:1: the document is empty")
            else:
                documents.append(MemoryDocument(namespace, file.stem, text, relative))
            continue
        facts.extend(_facts(text, relative, namespace, seen, problems))
    return MemoryFiles(documents, facts)


def _read(file: Path, relative: str, problems: list[str]) -> str | None:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        problems.append(f"{relative}:1:1: {too_big(size)}")
        return None
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(f"{relative}:1:1: the file is not UTF-8 text")
        return None


def _facts(text: str, relative: str, namespace: str, seen: dict[str, str],
           problems: list[str]) -> list[MemoryFact]:
    doc = parse_yaml(text, relative)
    found: list[MemoryFact] = []
    if doc.parsed and not isinstance(doc.data, dict):
        doc.report((), "a facts file holds a mapping of subject to {key: value}")
    elif doc.parsed:
        for subject, values in doc.data.items():
            if not isinstance(subject, str) or not _FACT_NAME.match(subject):
                doc.report((subject,), f"the subject {subject!r} must be a name (letters, "
                           "digits, '.', '_', '-', '@' and ':')", at_key=True)
                continue
            if not isinstance(values, dict):
                doc.report((subject,), "a subject holds a mapping of key to value")
                continue
            for key, value in values.items():
                loc = (subject, key)
                if not isinstance(key, str) or not _FACT_NAME.match(key):
                    doc.report(loc, f"the key {key!r} must be a name (letters, digits, '.', "
                               "'_', '-', '@' and ':')", at_key=True)
                    continue
                problem = _not_json(value)
                if problem is not None:
                    doc.report(loc, problem)
                    continue
                fact = MemoryFact(namespace, subject, key, value, relative)
                if fact.name in seen:
                    doc.report(loc, f"{subject}.{key} of namespace {namespace!r} is also "
                               f"given in {seen[fact.name]}", at_key=True)
                    continue
                seen[fact.name] = relative
                found.append(fact)
    problems.extend(doc.messages())
    return found if not doc.problems else []


def _not_json(value: Any) -> str | None:
    """Why a value read from YAML cannot be a fact's (JSON) value, or None."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return ("the value is not plain JSON data (a date or time? quote it, "
                "\"2026-01-31\"; NaN or infinity? give a finite number)")
    return None


def unknown_documents(root: Path, playbooks: list[tuple[str, list[str], str | None]],
                      files: MemoryFiles, stored: Callable[[str], bool]) -> list[str]:
    """A problem for each document a playbook's ``memory:`` names that neither ``memory/``
    nor the store (``stored``) has; ``playbooks``: (name, its memory list, its file)."""
    problems: list[str] = []
    known = files.document_names()
    for name, wanted, source in playbooks:
        for index, document in enumerate(wanted):
            if document in known or stored(document):
                continue
            where = _place(root, source, ("memory", index)) or f"{source or name}: "
            problems.append(f"{where}memory.{index}: no document {document} in memory/ or in "
                            f"memory's store (add memory/{document}.md)")
    return problems


def _place(root: Path, source: str | None, loc: tuple[str | int, ...]) -> str | None:
    """``file:line:column: `` of the value at ``loc`` in a YAML definition file, if it is one."""
    if source is None or not source.endswith((".yaml", ".yml")):
        return None
    try:
        doc = parse_yaml((root / source).read_text(encoding="utf-8"), source)
    except (OSError, UnicodeDecodeError):
        return None
    mark = doc.values.get(loc)
    return None if mark is None else f"{source}:{mark.line + 1}:{mark.column + 1}: "
