"""Import into memory (JSONL of facts and documents, or a folder of Markdown) and export.

A bad line is reported as ``file:line: what is wrong`` and nothing is imported: the
whole file is checked before the first write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soloist import jsonvalues
from soloist.errors import DefinitionError, InputError
from soloist.memory.documents import Documents
from soloist.memory.facts import Cause, Memory


def _text(path: Path) -> str:
    """A file's UTF-8 text; a device or a pipe (``/dev/urandom`` never ends) is refused."""
    if not path.is_file():
        raise InputError(f"{path} is not a file or a folder of Markdown; import takes a JSONL "
                         "file or a folder")
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start + 1} cannot be read); "
                         "save it as UTF-8") from None


def _records(path: Path, namespace: str | None) -> list[dict[str, Any]]:
    if path.is_dir():
        if not namespace:
            raise InputError("importing a folder of Markdown needs --namespace")
        return [{"type": "document", "namespace": namespace,
                 "key": md.relative_to(path).as_posix(), "text": _text(md),
                 "metadata": {"source": str(md)}}
                for md in sorted(path.rglob("*.md"))]
    problems: list[str] = []
    records: list[dict[str, Any]] = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = jsonvalues.loads(line, "the line")
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg})")
            continue
        except InputError as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        problem = _check(record, namespace)
        if problem:
            problems.append(f"{path}:{number}: {problem}")
        else:
            records.append(record)
    if problems:
        raise DefinitionError(problems)
    return records


def _check(record: Any, namespace: str | None) -> str | None:
    if not isinstance(record, dict):
        return "each line must be a JSON object"
    if namespace and "namespace" not in record:
        record["namespace"] = namespace
    kind = record.get("type", "fact")
    needed = {"fact": ("namespace", "subject", "key", "value"),
              "document": ("namespace", "key", "text")}.get(kind)
    if needed is None:
        return f"type must be fact or document, not {kind!r}"
    missing = [k for k in needed if k not in record]
    if missing:
        return f"a {kind} needs {', '.join(missing)}"
    sources = record.get("sources")
    if sources is not None and not (isinstance(sources, list) and all(
            isinstance(s, dict) and isinstance(s.get("kind"), str) for s in sources)):
        return 'sources must be a list of objects with a "kind"'
    return None


def import_file(path: Path, memory: Memory, documents: Documents, actor: str,
                namespace: str | None = None) -> dict[str, int]:
    if not path.exists():
        raise InputError(f"{path} does not exist")
    records = _records(path, namespace)
    cause = Cause(actor, f"import {path.name}")
    counts = {"facts": 0, "documents": 0}
    docs = [(r["namespace"], r["key"], r["text"], r.get("metadata") or {})
            for r in records if r.get("type") == "document"]
    if docs:
        counts["documents"] = documents.add_many(docs, cause)
    for r in records:
        if r.get("type", "fact") == "fact":
            memory.put(r["namespace"], r["subject"], r["key"], r["value"],
                       Cause(actor, r.get("reason") or cause.reason),
                       sources=r.get("sources") or None)
            counts["facts"] += 1
    return counts


def export_lines(memory: Memory, documents: Documents,
                 namespace: str = "*") -> Iterator[str]:
    """The current facts, then the newest version of every document, as JSONL that
    ``import_file`` takes again."""
    for fact in memory.facts(namespace, limit=1_000_000):
        yield json.dumps({"type": "fact", "namespace": fact.namespace, "subject": fact.subject,
                          "key": fact.key, "value": fact.value, "reason": fact.reason,
                          "version": fact.version, "actor": fact.actor,
                          **({"sources": fact.sources} if fact.sources else {})},
                         ensure_ascii=False)
    for doc in documents.latest(namespace):
        yield json.dumps({"type": "document", "namespace": doc.namespace, "key": doc.doc_key,
                          "text": doc.text, "metadata": doc.metadata, "reason": doc.reason,
                          "version": doc.version, "actor": doc.actor}, ensure_ascii=False)
