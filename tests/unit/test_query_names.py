"""Both SQL dialects name the same statements: the shared repositories run on either.

``store/repositories.py`` and ``store/memory_repositories.py`` reach every statement by
name (``self.q.insert_run``) on whichever dialect's ``queries`` module the backend gives
them, so a name one dialect lacks fails only when that code path runs on that backend.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType

import soloist.store
from soloist.store.postgres import queries as postgres
from soloist.store.sqlite import queries as sqlite

#: What only one backend defines, and why; the shared repositories never use these.
BACKEND_ONLY: dict[str, dict[str, str]] = {
    "postgres": {
        "CLAIMS_LOCK_KEY": "advisory-lock key of limited claims (SQLite has one writer)",
        "SCHEDULER_LOCK_KEY": "advisory-lock key of the single scheduler",
        "MIGRATIONS_LOCK_KEY": "advisory-lock key that serialises migrating processes",
        "READY_CHANNEL": "the LISTEN/NOTIFY channel of ready steps (SQLite workers poll)",
        "listen_ready": "LISTEN on that channel, by the backend's listener thread",
        "notify_ready": "NOTIFY sent in the commit pipeline",
        "commit": "COMMIT queued in the commit pipeline",
        "try_scheduler_lock": "the scheduler's session advisory lock",
        "release_scheduler_lock": "its release",
        "lock_migrations": "migrations run by the backend itself, under a lock",
        "create_migrations_table": "likewise (SQLite's backend migrates with its own SQL)",
        "applied_migrations": "likewise",
        "record_migration": "likewise",
        "current_tables": "the tables a restore drops before pg_restore",
        "server_clock": "the server's clock, read to correct this host's (SQLite: one host)",
    },
    "sqlite": {},
}

DIALECTS: dict[str, ModuleType] = {"postgres": postgres, "sqlite": sqlite}


def statement_names(module: ModuleType) -> dict[str, str]:
    """Each public name the module defines itself, with its kind: "sql", "function" or the
    type of a constant (imports and ``from __future__`` are left out)."""
    names: dict[str, str] = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name == "annotations" or isinstance(value, ModuleType):
            continue
        if inspect.isfunction(value):
            if value.__module__ == module.__name__:
                names[name] = f"function{inspect.signature(value)}"
        else:
            names[name] = "sql" if isinstance(value, str) and name.islower() \
                else type(value).__name__
    return names


def names_used_by_shared_repositories() -> set[str]:
    """Every ``<...>.q.NAME`` read in the repositories both backends share."""
    root = Path(soloist.store.__file__).parent
    used: set[str] = set()
    for path in (root / "repositories.py", root / "memory_repositories.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "q"):
                used.add(node.attr)
    return used


def test_both_dialects_define_the_same_names_but_the_allowed_ones() -> None:
    found = {backend: statement_names(module) for backend, module in DIALECTS.items()}
    for backend, other in (("postgres", "sqlite"), ("sqlite", "postgres")):
        only = set(found[backend]) - set(found[other])
        unexplained = sorted(only - set(BACKEND_ONLY[backend]))
        assert not unexplained, (
            f"{backend} defines {unexplained} and {other} does not: define them in "
            f"store/{other}/queries.py too, or add them to BACKEND_ONLY with a reason")
        stale = sorted(set(BACKEND_ONLY[backend]) - only)
        assert not stale, f"BACKEND_ONLY[{backend!r}] names {stale}, not {backend}-only now"


def test_a_name_in_both_dialects_is_the_same_kind_of_thing() -> None:
    found = {backend: statement_names(module) for backend, module in DIALECTS.items()}
    differ = {name: (found["sqlite"][name], found["postgres"][name])
              for name in set(found["sqlite"]) & set(found["postgres"])
              if found["sqlite"][name] != found["postgres"][name]}
    assert not differ, differ


def test_the_shared_repositories_use_only_names_both_dialects_define() -> None:
    used = names_used_by_shared_repositories()
    assert len(used) > 50  # the walk found the repositories' statements
    for backend, module in DIALECTS.items():
        missing = sorted(used - set(statement_names(module)))
        assert not missing, f"store/{backend}/queries.py lacks {missing}"
    backend_only = set().union(*(set(names) for names in BACKEND_ONLY.values()))
    assert not used & backend_only, "a backend-only name is used by the shared code"
