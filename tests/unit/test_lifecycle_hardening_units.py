"""The pure parts of issue 9 group 6: file confinement, file_roots, admission at staging,
the compensation gate's bookkeeping."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from soloist.control.policies import Policies, check_file_root
from soloist.errors import DeterministicError
from soloist.execution.context import StepContext, ToolCall
from soloist.execution.tools.base import Tool
from soloist.execution.tools.builtins import builtin_registry, confine, file_tools
from soloist.orchestration import compensation
from soloist.orchestration.lifecycle import StepState, check_step_move
from soloist.store.base import ApprovalRow, IntentRow


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / ".soloist").mkdir(parents=True)
    (root / "sub").mkdir()
    return root


def test_paths_inside_the_workspace_resolve_there(workspace: Path) -> None:
    real = Path(os.path.realpath(workspace))
    assert confine("notes.txt", str(workspace)) == real / "notes.txt"
    assert confine("sub/new/deep.txt", str(workspace)) == real / "sub" / "new" / "deep.txt"
    assert confine(str(workspace / "sub" / "x"), str(workspace)) == real / "sub" / "x"
    (workspace / "alias").symlink_to(workspace / "sub")  # a link that stays inside is fine
    assert confine("alias/x", str(workspace)) == real / "sub" / "x"


@pytest.mark.parametrize(("path", "problem"), [
    ("/etc/passwd", "outside the workspace"),
    ("/root/.ssh/authorized_keys", "outside the workspace"),
    ("../x", "contains '..'"),
    ("sub/../../x", "contains '..'"),
    ("sub/..", "contains '..'"),
    (".soloist/state.db", ".soloist/"),
    (".soloist", ".soloist/"),
    ("./.soloist/secret.key", ".soloist/"),
    ("", "empty"),
    ("a\x00b", "NUL"),
])
def test_paths_that_leave_the_workspace_are_refused(workspace: Path, path: str,
                                                    problem: str) -> None:
    with pytest.raises(DeterministicError, match=problem.replace(".", r"\.")):
        confine(path, str(workspace))


def test_symlinks_are_judged_by_where_they_point(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "escape").symlink_to(outside)
    (workspace / "keys").symlink_to(outside / "authorized_keys")  # a dangling link too
    (workspace / "state").symlink_to(workspace / ".soloist")
    with pytest.raises(DeterministicError, match="resolves to"):
        confine("escape/authorized_keys", str(workspace))
    with pytest.raises(DeterministicError, match="outside the workspace"):
        confine("keys", str(workspace))
    with pytest.raises(DeterministicError, match=r"\.soloist/"):
        confine("state/secret.key", str(workspace))


def test_file_roots_widen_the_confinement_but_never_to_the_state(workspace: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "srv" / "out"
    out.mkdir(parents=True)
    assert confine(str(out / "r.txt"), str(workspace), [str(out)]).name == "r.txt"
    with pytest.raises(DeterministicError, match=r"or .*srv/out"):
        confine(str(tmp_path / "srv" / "other.txt"), str(workspace), [str(out)])
    with pytest.raises(DeterministicError, match=r"\.soloist/"):
        confine(str(workspace / ".soloist" / "x"), str(workspace), [str(tmp_path)])


def test_file_roots_are_validated() -> None:
    assert check_file_root("/srv/out/") == "/srv/out"
    assert Policies(file_roots=["/srv/out"]).file_roots == ["/srv/out"]
    for bad, problem in [("srv/out", "relative"), ("/srv/../etc", "'..'"), ("/", "anywhere"),
                         ("", "not a folder path")]:
        with pytest.raises(ValidationError, match=problem):
            Policies(file_roots=[bad])
    with pytest.raises(ValidationError, match="file_root"):
        Policies.model_validate({"file_root": ["/srv"]})  # a typo is an error


def call(workspace: Path, key: str = "r/s/0") -> ToolCall:
    return ToolCall("r", "s", key, str(workspace))


def test_file_append_is_undone_by_file_unappend(workspace: Path) -> None:
    registry = builtin_registry()
    append, unappend = registry.get("file.append"), registry.get("file.unappend")
    first = append.invoke({"path": "log.txt", "line": "one"}, call(workspace, "r/s/0"))
    append.invoke({"path": "log.txt", "line": "two"}, call(workspace, "r/s/1"))
    assert first["key"] == "r/s/0" and first["appended"] is True
    assert append.compensate is not None
    undo = append.compensate.arguments({"path": "log.txt", "line": "one"}, first)
    assert undo == {"path": first["path"], "key": "r/s/0"}
    assert unappend.invoke(undo, call(workspace, "r/compensate:s/0")) == {
        "path": first["path"], "removed": 1}
    assert (workspace / "log.txt").read_text() == "r/s/1\ttwo\n"
    assert unappend.invoke(undo, call(workspace))["removed"] == 0  # idempotent
    assert "file.unappend" in registry and not registry.problems()


def test_a_file_tool_checks_its_path_when_admitted_and_when_invoked(workspace: Path) -> None:
    append, _ = file_tools()
    with pytest.raises(DeterministicError, match="outside the workspace"):
        append.admit({"path": "/tmp/x", "line": "y"}, str(workspace))
    with pytest.raises(DeterministicError, match="outside the workspace"):
        append.invoke({"path": "/tmp/x", "line": "y"}, call(workspace))
    with pytest.raises(DeterministicError, match="missing the required argument 'line'"):
        append.admit({"path": "ok.txt"}, str(workspace))
    assert append.admit({"path": "ok.txt", "line": "y"}, str(workspace)) == {
        "path": "ok.txt", "line": "y"}


def test_a_tools_own_check_runs_after_its_schema() -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    def check(args: Any, workspace: str) -> None:
        seen.append((dict(args), workspace))
        if args["n"] > 3:
            raise DeterministicError("n is too big.")

    def fn(n: int) -> int:
        return n

    spec = Tool("count", fn, "write", check_args=check)
    assert spec.admit({"n": "2"}, "/w") == {"n": 2}
    with pytest.raises(DeterministicError, match="too big"):
        spec.admit({"n": 5}, "/w")
    with pytest.raises(DeterministicError, match="invalid argument 'n'"):
        spec.admit({"n": "x"}, "/w")
    assert seen == [({"n": 2}, "/w"), ({"n": 5}, "/w")]  # never with unchecked values


def test_staging_admits_each_intent_and_keeps_none_that_fail(workspace: Path) -> None:
    registry = builtin_registry()
    ctx = StepContext("r", "s", 1, {},
                      admit=lambda tool, args: registry.get(tool).admit(args, str(workspace)))
    first = ctx.stage("file.append", {"path": "a.txt", "line": "ok"})
    with pytest.raises(DeterministicError, match="unexpected argument 'text'"):
        ctx.stage("file.append", {"path": "a.txt", "line": "ok", "text": "extra"})
    with pytest.raises(DeterministicError, match="outside the workspace"):
        ctx.stage("file.append", {"path": "/etc/cron.d/x", "line": "ok"})
    second = ctx.stage("file.append", {"path": "b.txt", "line": "ok"})
    assert [i.index for i in ctx.intents] == [first.index, second.index] == [0, 1]
    assert second.idempotency_key == "r/s/1"  # refused calls use up no index


def test_a_person_may_record_work_done_by_hand() -> None:
    check_step_move(StepState.AWAITING_APPROVAL, StepState.PERSISTING)


def approval(decision: str | None, note: str | None = None, attempt: int = 3,
             step: str = "compensate:charge", at: float = 1.0) -> ApprovalRow:
    return ApprovalRow(
        id="a-1", run_id="r", step_id=step, attempt=attempt, reason=compensation.REASON,
        message=compensation.gate_message(step, "the ledger said no", attempt),
        created_at=0.0, expires_at=None, default_decision=None, decision=decision,
        decided_by="person:ada" if decision else None, decided_at=at, note=note)


def test_the_gate_message_names_the_step_the_error_and_the_choices() -> None:
    message = compensation.gate_message("compensate:charge", "the ledger said no", 3)
    assert message.startswith("Undoing step charge failed after 3 attempts: the ledger "
                              "said no.")
    for word in ("Approve", "resolve", "reject"):
        assert word in message
    assert "after" not in compensation.gate_message("compensate:x", "no", 1)


def test_what_the_run_error_says_about_each_decision() -> None:
    notes, gave_up = compensation.summary([
        approval("approved", "retry please", at=1.0),
        approval("resolved", "voided by hand", at=2.0),
        approval("rejected", "not worth it", at=3.0),
        approval(None),
    ])
    assert gave_up
    assert notes == [
        "Undoing step charge failed after 3 attempts: the ledger said no; undone by hand "
        "by person:ada: voided by hand",
        "Undoing step charge failed after 3 attempts: the ledger said no; given up by "
        "person:ada: not worth it, its effects stay",
    ]
    assert compensation.summary([approval("approved")]) == ([], False)


def test_retries_a_person_asks_for_count_from_their_decision() -> None:
    rows = [approval("approved", attempt=3), approval("approved", attempt=7),
            approval(None, attempt=9), approval("approved", attempt=20, step="compensate:x")]
    assert compensation.attempt_base(rows, "compensate:charge") == 7
    assert compensation.attempt_base([], "compensate:charge") == 0


def test_a_bad_file_root_is_a_deploy_error_with_its_place() -> None:
    from soloist.control.loader import load_text
    from soloist.errors import DefinitionError

    with pytest.raises(DefinitionError, match=r"policies.yaml:2:.*relative"):
        load_text("rules: []\nfile_roots: [srv/out]\n", "policies.yaml", Policies)


def test_the_gate_names_the_compensating_action() -> None:
    from soloist.control.loader import load_playbook_text

    playbook = load_playbook_text(
        "name: p\nsteps:\n"
        "  - {id: a, tool: note, args: {text: x}, compensate: {tool: note, args: {text: y}}}\n"
        "  - {id: b, tool: file.append, args: {path: f, line: x}}\n", "p.yaml")
    assert compensation.action_of(playbook, "compensate:a", []) == "tool note"
    intents = [IntentRow("r", "b", 0, "r/b/0", "file.append", {}, "", "dispatched", None, None,
                         0.0, 1.0, {"tool": "file.unappend", "args": {}}),
               IntentRow("r", "b", 1, "r/b/1", "file.append", {}, "", "failed", None, "no",
                         0.0, None)]
    assert compensation.action_of(playbook, "compensate:b", intents) == "tool file.unappend"
    assert compensation.action_of(playbook, "compensate:gone", []) == ""
    assert "(tool note) failed" in compensation.gate_message("compensate:a", "no", 1,
                                                             "tool note")
