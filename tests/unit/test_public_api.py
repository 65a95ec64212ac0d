"""``soloist`` exports a small public API, and importing it costs nothing.

The error tree is read from ``soloist/errors.py`` itself: every ``SoloistError`` subclass
defined there is public, so a new error class must be exported too.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import soloist
from soloist import errors

#: Where each public name other than the errors lives.
HOMES = {
    "Workspace": "soloist.workspace",
    "Playbook": "soloist.control.playbooks",
    "Agent": "soloist.control.agents",
    "Policies": "soloist.control.policies",
    "tool": "soloist.execution.tools.base",
    "StepContext": "soloist.execution.context",
    "ToolCall": "soloist.execution.context",
    "Cause": "soloist.memory.facts",
}

SOURCES = str(Path(soloist.__file__).resolve().parents[1])


def error_classes() -> set[str]:
    """Every SoloistError subclass errors.py defines under its own name (no aliases)."""
    return {name for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.SoloistError)
            and value.__module__ == errors.__name__ and value.__name__ == name}


def test_all_is_exactly_the_public_api() -> None:
    assert len(soloist.__all__) == len(set(soloist.__all__))
    unexported = sorted(error_classes() - set(soloist.__all__))
    assert not unexported, (f"soloist/errors.py defines {unexported}: add them to __all__ "
                            f"and the TYPE_CHECKING imports of soloist/__init__.py")
    assert set(soloist.__all__) == set(HOMES) | error_classes()
    assert "SoloistError" in soloist.__all__ and "UserError" in soloist.__all__


@pytest.mark.parametrize("name", sorted(set(HOMES) | error_classes()))
def test_every_public_name_is_the_object_of_its_home_module(name: str) -> None:
    home = importlib.import_module(HOMES.get(name, "soloist.errors"))
    assert getattr(soloist, name) is getattr(home, name)
    assert name in dir(soloist)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Worker'"):
        soloist.Worker  # noqa: B018


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": SOURCES},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_importing_soloist_imports_none_of_its_planes() -> None:
    loaded = _run("import sys; before = set(sys.modules); import soloist; "
                  "print(sorted(set(sys.modules) - before))")
    assert loaded == "['__future__', 'soloist']"


def test_star_import_gives_the_public_api() -> None:
    names = _run("from soloist import *; print(sorted(k for k in dir() if k[0] != '_'))")
    assert names == str(sorted(soloist.__all__))
