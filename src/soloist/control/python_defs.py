"""Playbooks and agents written in Python: ``playbooks/*.py`` and ``agents/*.py``.

A module there defines module-level ``Playbook(...)`` / ``Agent(...)`` objects; they join
the YAML ones as the same model, so a deploy versions them alike. A module that fails to
import is reported as ``file:line:column: what is wrong`` like a YAML problem.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from soloist.control.modules import SiblingImport, WorkspaceModules

M = TypeVar("M", bound=BaseModel)


def _where(exc: BaseException, file: Path) -> int:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return frames[-1].lineno or 1 if frames else 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"{loc}: {first['msg']}" if loc else str(first["msg"])
    if isinstance(exc, SyntaxError):
        return f"syntax error: {exc.msg}"
    if isinstance(exc, SiblingImport):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def load_python(modules: WorkspaceModules, folder: str, model: type[M],
                problems: list[str]) -> list[tuple[M, str]]:
    """Module-level ``model`` instances of each ``folder/*.py`` of the workspace, with
    their file (each run anew: a deploy reads the files as they are now)."""
    root = modules.root
    directory = root / folder
    if not directory.is_dir():
        return []
    found: list[tuple[M, str]] = []
    for file in sorted(directory.glob("*.py")):
        if file.name.startswith((".", "_")):
            continue
        relative = file.relative_to(root).as_posix()
        try:
            module = modules.execute(file)
        except Exception as exc:
            line = exc.lineno or 1 if isinstance(exc, SyntaxError) else _where(exc, file)
            column = (exc.offset or 1) if isinstance(exc, SyntaxError) else 1
            problems.append(f"{relative}:{line}:{column}: {_describe(exc)}")
            continue
        for value in vars(module).values():
            if isinstance(value, model):
                found.append((value, relative))
    return found
