"""The workspace's own Python (``tasks.py``, tool modules, Python definitions), imported
from its folder without putting that folder on ``sys.path``.

Each :class:`WorkspaceModules` imports the workspace's modules as submodules of a package
private to it, whose ``__path__`` is the workspace folder: ``tasks`` of one workspace and
``tasks`` of another are different module objects, even in one process, and neither
shadows an installed package of the same name for the rest of the process. A name that is
not a file or package in the folder is imported as usual (installed packages,
``soloist.*``). Inside the folder, a module reaches its sibling relatively (``from . import
helpers``), as inside any package; a plain ``import helpers`` looks only at installed
packages and fails with a sentence saying so.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE_PREFIX = "_soloist_workspace_"


class SiblingImport(ModuleNotFoundError):
    """A workspace module imported its sibling as if it were installed."""


class WorkspaceModules:
    """Imports one workspace's modules; nothing happens until the first import."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # One package per loader, not per folder: a workspace opened again (after its
        # files changed) imports them anew instead of finding the first opening's modules.
        self.package = f"{PACKAGE_PREFIX}{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._installed = False
        # Every python step resolves its function: after the first time, one dict lookup
        # rather than looking at the folder and through the import system again.
        self._resolved: dict[str, Any] = {}

    def file(self, module: str) -> Path | None:
        """The file of ``module`` (``a.b``: ``a/b.py`` or ``a/b/__init__.py``) if it is
        the workspace's own, else None."""
        parts = module.split(".")
        if not all(part.isidentifier() for part in parts):
            return None
        base = self.root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def import_module(self, module: str) -> ModuleType:
        """The workspace's ``module`` if it has one, else the installed one."""
        if self.file(module) is None:
            return importlib.import_module(module)
        self._install()
        try:
            return importlib.import_module(f"{self.package}.{module}")
        except ModuleNotFoundError as exc:
            raise self._sibling(exc) from None

    def resolve(self, target: str) -> Any:
        """The object a ``module:attribute.path`` target names (AttributeError if the
        module lacks it; whatever importing the module raises, otherwise)."""
        found: Any = self._resolved.get(target)
        if found is not None:
            return found
        module, _, attribute = target.partition(":")
        found = self.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
        self._resolved[target] = found
        return found

    def execute(self, file: Path) -> ModuleType:
        """Run one file of the folder as a fresh module that is not kept (a definition
        file is read anew at every deploy); its relative imports reach the workspace's
        modules (``from .. import tasks`` in ``playbooks/x.py``)."""
        relative = file.relative_to(self.root).with_suffix("")
        name = ".".join((self.package, *relative.parts))
        self._install()
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"{file} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as an import would: pydantic resolves names through it
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as exc:
            raise self._sibling(exc, "." * len(relative.parts)) from None
        finally:
            sys.modules.pop(name, None)
        return module

    def unload(self) -> None:
        """Forget the modules imported so far (the workspace is closed)."""
        with self._lock:
            self._resolved.clear()
            for name in [n for n in sys.modules
                         if n == self.package or n.startswith(self.package + ".")]:
                del sys.modules[name]
            self._installed = False

    def _install(self) -> None:
        with self._lock:
            if self._installed and self.package in sys.modules:
                return
            spec = importlib.machinery.ModuleSpec(self.package, None, is_package=True)
            spec.submodule_search_locations = [str(self.root)]
            package = importlib.util.module_from_spec(spec)
            package.__doc__ = f"The Python modules of the workspace at {self.root}."
            sys.modules[self.package] = package
            self._installed = True

    def _sibling(self, exc: ModuleNotFoundError, dots: str = ".") -> ModuleNotFoundError:
        """The error in the workspace's names: a missing module under the private package
        by its own name, and a plain import of a sibling with the way to write it."""
        name = exc.name or ""
        if name.startswith(self.package + "."):
            own = name[len(self.package) + 1:]
            named: ModuleNotFoundError = ModuleNotFoundError(
                f"no module named {own!r} in the workspace", name=own)
        elif self.file(name) is not None:
            named = SiblingImport(f"no module named {name!r}: {name} is the workspace's own "
                                  "module, which its neighbours import relatively "
                                  f"(`from {dots} import {name.split('.')[0]}`)", name=name)
        else:
            return exc
        return named.with_traceback(exc.__traceback__)
