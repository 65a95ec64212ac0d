"""The planes are layers: a module imports its own plane and the ones below, never above.

Every ``import`` and ``from ... import`` counts, at module level and inside functions
(a lazy import is still a dependency); a failure names the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import soloist

#: bottom to top; a name on one line may import any name on the same or an earlier line
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "config", "jsonvalues"}),
    frozenset({"store"}),
    frozenset({"control"}),
    frozenset({"memory"}),
    frozenset({"execution"}),
    frozenset({"orchestration"}),
    frozenset({"integrations"}),
    # the test doubles a user's own tests import sit beside the composition root
    frozenset({"workspace", "testing"}),
    # the workspace a new user starts from is their code: it may use anything public; the
    # demo's servers are a program of their own beside the interfaces
    frozenset({"interfaces", "templates", "demo"}),
)
ROOT = Path(soloist.__file__).parent


def _rank(plane: str) -> int:
    for rank, names in enumerate(LAYERS):
        if plane in names:
            return rank
    raise AssertionError(f"plane {plane!r} is not in LAYERS: add it where it belongs")


def _plane_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "soloist" and len(parts) > 1 else None


def _imports(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``source``, read as if it were ``path``."""
    relative = path.relative_to(ROOT.parent).with_suffix("")
    package = list(relative.parts if path.name == "__init__.py" else relative.parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - (node.level - 1)] if node.level else []
            found.append((node.lineno, ".".join([*base, *filter(None, [node.module])])))
    return found


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        own = relative.parts[0].removesuffix(".py") if relative.parts[0] != "__init__.py" \
            else None
        if own is None:
            continue  # soloist/__init__.py is the public face: it re-exports from every plane
        for line, target in _imports(path.read_text(encoding="utf-8"), path):
            plane = _plane_of(target)
            if plane is None or plane == own:
                continue
            if _rank(plane) > _rank(own):
                problems.append(f"src/soloist/{relative}:{line}: {own} imports {target}, "
                                f"a higher plane")
    return problems


def test_no_plane_imports_a_higher_one() -> None:
    problems = upward_imports()
    assert not problems, "\n".join(problems)


def test_every_plane_has_a_place() -> None:
    for entry in ROOT.iterdir():
        if entry.name.startswith(("_", ".")) or entry.name == "py.typed":
            continue
        if entry.is_dir() and not (entry / "__init__.py").exists():
            continue
        _rank(entry.name.removesuffix(".py"))


def test_the_walk_sees_lazy_and_relative_imports() -> None:
    source = "def f():\n    from soloist.execution import steps\n\nfrom ..orchestration import x\n"
    imports = _imports(source, ROOT / "memory" / "probe.py")
    assert (2, "soloist.execution") in imports
    assert (4, "soloist.orchestration") in imports
