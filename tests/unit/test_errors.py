"""The error contract: every Soloist error has a kind, and classify() reads it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from soloist import errors
from soloist.errors import (
    AgentFailed,
    BreakerOpen,
    ConfigError,
    DeterministicError,
    IllegalTransition,
    InputError,
    InvalidOutput,
    InvalidState,
    LeaseLost,
    NotFound,
    SemanticError,
    SoloistError,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    TransientError,
    UniqueViolation,
    classify,
)
from soloist.execution.agent_loop import AgentResult
from soloist.store.sqlite.backend import _translate


def every_error_class() -> list[type[SoloistError]]:
    """Soloist's own (tests may subclass them too)."""
    found: list[type[SoloistError]] = []
    todo: list[type[SoloistError]] = [SoloistError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("soloist."):
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_the_store_being_busy_or_unreachable_is_transient() -> None:
    assert classify(StoreUnavailable("cannot reach PostgreSQL")) == "transient"
    assert classify(StoreConflict("the SQLite store stayed locked")) == "transient"
    # A stale worker's write refused is no fault of the step's work.
    assert classify(LeaseLost()) == "transient"


@pytest.mark.parametrize("error", [
    ConfigError("bad toml"), InputError("bad input"), NotFound("no run r-1"),
    InvalidState("already done"), IllegalTransition("done -> ready"),
    StoreError("append-only"), UniqueViolation("dup", constraint="runs(id)"),
    InvalidOutput("not JSON", ["not JSON"], "{"), DeterministicError("4xx"),
])
def test_what_a_retry_cannot_mend_is_deterministic(error: SoloistError) -> None:
    assert classify(error) == "deterministic"


def test_step_failures_keep_their_kinds() -> None:
    assert classify(TransientError("429")) == "transient"
    assert classify(BreakerOpen("open")) == "transient"
    assert classify(SemanticError("check failed")) == "semantic"


def test_others_are_deterministic_except_timeouts_and_lost_connections() -> None:
    assert classify(KeyError("total")) == "deterministic"
    assert classify(TimeoutError()) == "transient"
    assert classify(ConnectionResetError()) == "transient"


def test_every_error_class_has_a_kind_and_a_readable_retry_after() -> None:
    for cls in every_error_class():
        assert cls.kind in ("transient", "deterministic", "semantic"), cls
        assert cls.retry_after is None, cls
    assert TransientError("slow down", retry_after=2.5).retry_after == 2.5


def test_an_agent_that_failed_on_a_busy_store_keeps_the_store_error_kind() -> None:
    cause = StoreConflict("the SQLite store stayed locked")
    failed = AgentFailed("agent a: busy", AgentResult(None), cause)
    assert classify(failed) == "transient"
    assert classify(AgentFailed("agent a: gave up", AgentResult(None))) == "deterministic"
    limited = AgentFailed("agent a: 429", AgentResult(None), TransientError("429", retry_after=3.0))
    assert (classify(limited), limited.retry_after) == ("transient", 3.0)


def test_the_drawn_tree_is_the_class_tree() -> None:
    """Each name in the module docstring's tree sits under its real base class, and every
    error class is drawn."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*(?:\|\s*)*)(?:\+-- )?([A-Z]\w+)\b", line)
        if not match or not hasattr(errors, match.group(2)):
            continue
        depth = len(match.group(1))
        name = match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    drawn = {"SoloistError", *parents}
    assert len(parents) > 15
    assert drawn == {cls.__name__ for cls in every_error_class()}
    for name, parent in parents.items():
        assert getattr(errors, name).__bases__ == (getattr(errors, parent),), name


# -- SQLite errors are told apart by their error code name -------------------------------


def sqlite_error(path: Path, *statements: str, uri: bool = False) -> sqlite3.Error:
    try:
        db = sqlite3.connect(str(path), uri=uri, isolation_level=None)
        for statement in statements:
            db.execute(statement)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError("no error")


def test_sqlite_errors_are_classified_by_their_code(tmp_path: Path) -> None:
    cantopen = sqlite_error(tmp_path)  # a folder is no database
    assert isinstance(_translate(cantopen, "x.db"), StoreUnavailable)
    sqlite3.connect(tmp_path / "ro.db").execute("CREATE TABLE t (a)").connection.commit()
    readonly = sqlite_error(Path(f"file:{tmp_path / 'ro.db'}?mode=ro"),
                            "INSERT INTO t VALUES (1)", uri=True)
    assert readonly.sqlite_errorname.startswith("SQLITE_READONLY")
    assert isinstance(_translate(readonly, "ro.db"), StoreUnavailable)
    full = sqlite_error(tmp_path / "full.db", "PRAGMA max_page_count = 2",
                        "CREATE TABLE t (a)",
                        "INSERT INTO t SELECT zeroblob(100000)")
    assert full.sqlite_errorname == "SQLITE_FULL"
    assert isinstance(_translate(full, "full.db"), StoreUnavailable)
    other = sqlite_error(tmp_path / "x.db", "CREATE TABLE t (a CHECK (a > 0))",
                         "INSERT INTO t VALUES (0)")
    translated = _translate(other, "x.db")
    assert type(translated) is StoreError and "SQLITE_CONSTRAINT_CHECK" in translated.message


def test_a_busy_message_without_the_busy_code_is_not_taken_for_one() -> None:
    # Text is for people: only the code decides (here none, so a plain store error).
    assert type(_translate(sqlite3.OperationalError("database is locked"), "x.db")) \
        is StoreError


def test_every_soloist_error_is_defined_in_errors_py() -> None:
    """A new error class joins the tree in errors.py (and its drawing), not its module."""
    import ast
    from pathlib import Path

    import soloist

    tree = {name for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.SoloistError)}
    elsewhere = []
    root = Path(soloist.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name == "errors.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    (base.id if isinstance(base, ast.Name) else getattr(base, "attr", ""))
                    in tree for base in node.bases):
                elsewhere.append(f"{path.relative_to(root.parent)}:{node.lineno}: "
                                 f"class {node.name}")
    assert not elsewhere, "\n".join(elsewhere)
