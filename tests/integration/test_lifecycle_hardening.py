"""The lifecycle never gets stuck and never half-acts (issue 9, group 6), on both backends.

A compensation that fails goes to a person; intents are checked when they are staged and
again before the first dispatch; a dispatch that fails part-way is undone; the built-in
file tools stay inside the workspace (and the folders policies.yaml names).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import InvalidState
from soloist.execution.costs import Price
from soloist.execution.llm.base import ChatResponse, ToolCallRequest, Usage
from soloist.execution.llm.router import FixedRouter
from soloist.testing.llm import ScriptedProvider, reply
from soloist.workspace import Workspace

TASKS = '''
from pathlib import Path

from soloist.errors import DeterministicError, Throttled, TransientError
from soloist.execution.tools.base import tool

HERE = Path(__file__).parent


def noop(ctx, **kw):
    return {"step": ctx.step_id}


def boom(ctx):
    raise ValueError("bad input")


def undo(ctx, which):
    """Fails as undo.WHICH.flag says: 'deterministic', or 'transient:N' / 'throttled:N'
    (N times)."""
    flag = HERE / f"undo.{which}.flag"
    mode = flag.read_text() if flag.exists() else ""
    if mode == "deterministic":
        raise DeterministicError(f"the ledger refused to void {which}")
    if mode.startswith(("transient:", "throttled:")):
        count = HERE / f"undo.{which}.count"
        seen = int(count.read_text()) if count.exists() else 0
        count.write_text(str(seen + 1))
        if seen < int(mode.split(":")[1]):
            if mode.startswith("throttled:"):
                raise Throttled("the ledger said 429", retry_after=0.01)
            raise TransientError("the ledger said 503")
    with open(HERE / "undone.txt", "a") as handle:
        handle.write(which + "\\n")
    return {"undone": which}


def stage_lines(ctx, lines):
    for line in lines:
        ctx.stage("file.append", {"path": "effects.txt", "line": line})
    return {"staged": len(lines)}


def stage_then_bad(ctx):
    ctx.stage("file.append", {"path": "effects.txt", "line": "good"})
    ctx.stage("file.append", {"path": "effects.txt", "lines": "typo"})
    return {"never": "reached"}


def stage_then_refused(ctx):
    ctx.stage("file.append", {"path": "effects.txt", "line": "one"})
    ctx.stage("file.append", {"path": "effects.txt", "line": "two"})
    ctx.stage("ledger.refuse", {"amount": 9})
    return {"staged": 3}


def stage_to(ctx, paths):
    for path in paths:
        ctx.stage("file.append", {"path": path, "line": "x"})
    return {"staged": len(paths)}


@tool("ledger.refuse", effect="write")
def ledger_refuse(amount: int) -> dict:
    """Valid arguments, but the ledger says no when it is called."""
    raise DeterministicError(f"the ledger refused an entry of {amount}")
'''

PLAYBOOKS = {
    "undoable": """
name: undoable
steps:
  - {id: a, tool: note, args: {text: a}, compensate: {python: "tasks:undo", args: {which: a}}}
  - {id: b, tool: note, args: {text: b}, compensate: {python: "tasks:undo", args: {which: b}}}
  - {id: fail, python: "tasks:boom"}
""",
    "held": """
name: held
steps:
  - {id: b, tool: note, args: {text: b}, compensate: {python: "tasks:undo", args: {which: b}}}
  - {id: wait, gate: true}
""",
    "badstage": """
name: badstage
steps:
  - {id: s, python: "tasks:stage_then_bad"}
""",
    "partial": """
name: partial
steps:
  - {id: s, python: "tasks:stage_then_refused"}
""",
    "partialspec": """
name: partialspec
steps:
  - id: s
    python: tasks:stage_then_refused
    compensate: {python: "tasks:undo", args: {which: s}}
""",
    "gatedlines": """
name: gatedlines
steps:
  - id: s
    python: tasks:stage_lines
    args: {lines: [one, two]}
    gate: {message: "write two lines?"}
""",
    "paths": """
name: paths
inputs: {type: object, properties: {paths: {type: array}}}
steps:
  - {id: s, python: "tasks:stage_to", args: {paths: "{{ inputs.paths }}"}}
""",
    "writer": """
name: writer
steps:
  - id: w
    agent: scribe
    task: "Write the lines."
""",
}

AGENT = """
name: scribe
instructions: You write lines to files.
model: worker
tools: [file.append]
"""


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml='[tools]\nmodules = ["tasks"]\n')
    (root / "agents").mkdir()
    (root / "agents" / "scribe.yaml").write_text(AGENT)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def drain(ws: Workspace) -> None:
    ws.worker(concurrency=2).run(until_idle=True)


def states(ws: Workspace, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state for s in ws.show(run_id).steps}


def lines(path: Path) -> list[str]:
    return [line.split("\t", 1)[1] for line in path.read_text().splitlines()] \
        if path.exists() else []


def flag(ws: Workspace, which: str, mode: str | None) -> None:
    path = ws.root / f"undo.{which}.flag"
    if mode is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(mode)


def kinds(ws: Workspace, run_id: str, kind: str) -> list[dict[str, object]]:
    return [e.data for e in ws.log(run_id=run_id) if e.kind == kind]


# -- 1. a failed compensation goes to a person ------------------------------------------


def test_a_failed_compensation_waits_for_a_person_and_approve_retries_it(
        ws: Workspace) -> None:
    flag(ws, "b", "deterministic")
    run_id = ws.start("undoable")
    drain(ws)
    assert ws.get_run(run_id).state == "compensating"
    [pending] = ws.approvals()
    approval = pending.approval
    assert approval.reason == "compensation" and approval.step_id == "compensate:b"
    assert "Undoing step b (python tasks:" in approval.message  # what failed, and how
    assert "the ledger refused to void b" in approval.message
    assert states(ws, run_id)["compensate:a"] == "scheduled"  # the next undo waits its turn
    # The run cannot be cancelled out of it, but the refusal says what to do.
    with pytest.raises(InvalidState, match=f"soloist approve {approval.id}"):
        ws.cancel(run_id)
    [failed] = kinds(ws, run_id, "compensation.failed")
    assert failed["step"] == "b" and failed["approval"] == approval.id

    flag(ws, "b", None)
    ws.approve(approval.id, "the ledger is back", actor="person:ada")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "bad input" in (run.error or "")
    assert "given up" not in (run.error or "")
    assert (ws.root / "undone.txt").read_text().split() == ["b", "a"]
    assert states(ws, run_id)["a"] == states(ws, run_id)["b"] == "compensated"
    [decided] = kinds(ws, run_id, "compensation.decided")
    assert decided["decision"] == "retry" and decided["step"] == "b"
    assert ws.approvals() == []
    assert ws.verify().ok


def test_resolved_by_hand_counts_as_compensated_and_the_run_says_so(ws: Workspace) -> None:
    flag(ws, "b", "deterministic")
    run_id = ws.start("undoable")
    drain(ws)
    [pending] = ws.approvals()
    ws.resolve(pending.approval.id, "voided it in the ledger UI", actor="person:ada")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed"
    assert "undone by hand by person:ada: voided it in the ledger UI" in (run.error or "")
    assert (ws.root / "undone.txt").read_text().split() == ["a"]  # the other still ran
    steps = states(ws, run_id)
    assert steps["b"] == "compensated" and steps["compensate:b"] == "done"
    [decided] = kinds(ws, run_id, "compensation.decided")
    assert decided["decision"] == "done_by_hand"
    assert decided["note"] == "voided it in the ledger UI"


def test_giving_up_ends_the_run_failed_with_the_problem_recorded(ws: Workspace) -> None:
    flag(ws, "b", "deterministic")
    run_id = ws.start("held")
    drain(ws)
    ws.cancel(run_id)  # a cancelled run compensates too; its undo fails
    drain(ws)
    [pending] = ws.approvals()
    assert pending.approval.reason == "compensation"
    ws.reject(pending.approval.id, "not worth it", actor="person:ada")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed"  # not "cancelled": something was left undone
    error = run.error or ""
    assert "the ledger refused to void b" in error
    assert "given up by person:ada: not worth it" in error
    assert states(ws, run_id)["b"] == "done"  # its effects stay, and say so
    [decided] = kinds(ws, run_id, "compensation.decided")
    assert decided["decision"] == "give_up"
    assert kinds(ws, run_id, "run.failed")[-1]["compensated"] is False


def test_resolve_is_only_for_failed_compensations(ws: Workspace) -> None:
    ws.start("held")
    drain(ws)
    [pending] = ws.approvals()
    with pytest.raises(InvalidState, match="not a failed compensation"):
        ws.resolve(pending.approval.id, "n/a")
    assert ws.approvals()[0].approval.decision is None


def test_transient_compensation_failures_retry_with_backoff_before_a_person(
        ws: Workspace) -> None:
    flag(ws, "a", "transient:1")
    flag(ws, "b", "transient:9")
    run_id = ws.start("undoable")
    drain(ws)
    [pending] = ws.approvals()  # b used up its retries; a has not run yet
    assert pending.approval.step_id == "compensate:b"
    assert "after 3 attempts" in pending.approval.message
    assert (ws.root / "undo.b.count").read_text() == "3"
    moves = [e.data for e in ws.log(run_id=run_id)
             if e.kind == "step.transition" and e.step_id == "compensate:b"
             and e.data.get("to") == "ready" and "retry_in" not in e.data]
    assert any("the ledger said 503" in str(m.get("error")) for m in moves)
    flag(ws, "b", None)
    ws.retry(pending.approval.id, "try again now")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed"
    assert (ws.root / "undo.a.count").read_text() == "2"  # one transient failure, retried
    assert (ws.root / "undone.txt").read_text().split() == ["b", "a"]
    assert ws.approvals() == []


def test_a_throttled_compensation_waits_without_spending_its_attempts(ws: Workspace) -> None:
    flag(ws, "b", "throttled:6")  # more 429s than its 3 attempts
    run_id = ws.start("undoable")
    drain(ws)
    assert ws.approvals() == []  # waits, not failures: no person was asked
    assert (ws.root / "undo.b.count").read_text() == "7"
    assert (ws.root / "undone.txt").read_text().split() == ["b", "a"]
    waits = [e.data for e in ws.log(run_id=run_id)
             if e.kind == "step.transition" and e.step_id == "compensate:b"
             and e.data.get("to") == "ready" and "waits" in e.data]
    assert len(waits) == 6
    assert ws.get_run(run_id).state == "failed"


def test_a_compensation_that_kills_its_workers_goes_to_a_person(ws: Workspace) -> None:
    run_id = ws.start("held")
    drain(ws)
    ws.cancel(run_id)
    reaper = ws.worker(concurrency=1, name="reaper")
    for attempt in (1, 2, 3):
        with ws.store.transaction() as tx:
            [row] = tx.steps.claim(f"doomed-{attempt}", time.time(), 0.01, 1)
        assert row.step_id == "compensate:b"
        time.sleep(0.03)
        assert reaper.reap_expired(time.time()) == 1
    [pending] = ws.approvals()
    assert pending.approval.reason == "compensation"
    assert "PoisonStep" in pending.approval.message
    ws.approve(pending.approval.id)
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "cancelled"  # undone after all: the run ends as it was going to
    assert (ws.root / "undone.txt").read_text().split() == ["b"]


# -- 2. intents are checked when staged and before the first dispatch -------------------


def test_a_bad_intent_fails_the_python_step_when_it_is_staged(ws: Workspace) -> None:
    run_id = ws.start("badstage")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed"
    assert "missing the required argument 'line'" in (run.error or "")
    assert ws.show(run_id).intents == []  # nothing staged, nothing dispatched
    assert not (ws.root / "effects.txt").exists()


def test_intents_that_became_invalid_are_caught_before_the_first_dispatch(
        ws: Workspace, tmp_path: Path) -> None:
    run_id = ws.start("gatedlines")
    drain(ws)
    [pending] = ws.approvals()
    # While the gate waits, effects.txt becomes a link to a file outside the workspace.
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    os.symlink(outside, ws.root / "effects.txt")
    ws.approve(pending.approval.id)
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "outside the workspace" in (run.error or "")
    assert outside.read_text() == ""  # neither line was written
    assert [i.status for i in ws.show(run_id).intents] == ["failed", "pending"]


def test_a_dispatch_that_fails_part_way_undoes_what_it_did(ws: Workspace) -> None:
    run_id = ws.start("partial")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "refused an entry of 9" in (run.error or "")
    intents = ws.show(run_id).intents
    assert [i.status for i in intents] == ["dispatched", "dispatched", "failed"]
    assert lines(ws.root / "effects.txt") == []  # both lines were removed again
    assert states(ws, run_id)["compensate:s"] == "done"


def test_a_step_that_half_dispatched_runs_its_own_compensation(ws: Workspace) -> None:
    run_id = ws.start("partialspec")
    drain(ws)
    assert ws.get_run(run_id).state == "failed"
    assert (ws.root / "undone.txt").read_text().split() == ["s"]  # the playbook's undo ran
    assert states(ws, run_id)["compensate:s"] == "done"


def script(ws: Workspace, *responses: ChatResponse) -> ScriptedProvider:
    provider = ScriptedProvider(responses)
    ws.runner.router = FixedRouter(provider, "m1", Price(input=1.0, output=2.0))
    return provider


def calls(*items: tuple[str, dict[str, object]]) -> ChatResponse:
    return ChatResponse(tool_calls=tuple(ToolCallRequest(id=f"c{i}", name=n, arguments=a)
                                         for i, (n, a) in enumerate(items)),
                        usage=Usage(input_tokens=10, output_tokens=5),
                        finish_reason="tool_calls")


def test_an_agents_bad_call_goes_back_to_the_model_and_is_not_staged(ws: Workspace) -> None:
    provider = script(
        ws,
        calls(("file.append", {"path": "out.txt", "line": "one"}),
              ("file.append", {"path": "out.txt", "line": "two"}),
              ("file.append", {"path": "out.txt", "text": "three"})),
        calls(("file.append", {"path": "out.txt", "line": "three"})),
        reply('"written"'),
    )
    run_id = ws.start("writer")
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    told = [json.loads(m.content) for m in provider.requests[1].messages if m.role == "tool"]
    assert "staged" in told[0] and "staged" in told[1]
    assert "not staged" in told[2]["error"] and "'line'" in told[2]["error"]
    assert lines(ws.root / "out.txt") == ["one", "two", "three"]
    assert [i.status for i in ws.show(run_id).intents] == ["dispatched"] * 3
    [refused] = kinds(ws, run_id, "tool.refused")
    assert refused["tool"] == "file.append"


# -- 3. the file tools stay in the workspace ----------------------------------------------


def test_file_tools_are_confined_to_the_workspace(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ws.root / "link").symlink_to(outside)
    cases = {
        str(tmp_path / "elsewhere" / "authorized_keys"): "outside the workspace",
        "link/authorized_keys": "outside the workspace",
        "../elsewhere/authorized_keys": "contains '..'",
        ".soloist/state.db": ".soloist/",
        str(ws.root / ".soloist" / "secret.key"): ".soloist/",
    }
    for path, problem in cases.items():
        run_id = ws.start("paths", {"paths": [path]})
        drain(ws)
        run = ws.get_run(run_id)
        assert run.state == "failed", path
        assert problem in (run.error or ""), (path, run.error)
    assert list(outside.iterdir()) == []
    run_id = ws.start("paths", {"paths": ["inside/ok.txt"]})
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    assert lines(ws.root / "inside" / "ok.txt") == ["x"]


def test_a_policy_can_name_other_folders(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "srv-out"
    out.mkdir()
    target = str(out / "report.txt")
    refused = ws.start("paths", {"paths": [target]})
    drain(ws)
    assert ws.get_run(refused).state == "failed"
    (ws.root / "policies.yaml").write_text(f"file_roots: [{out}]\n")
    ws.deploy("person:test")
    ws.refresh_policies()
    allowed = ws.start("paths", {"paths": [target]})
    drain(ws)
    assert ws.get_run(allowed).state == "done"
    assert lines(out / "report.txt") == ["x"]
    # The state folder stays off limits even if a root contains the workspace.
    (ws.root / "policies.yaml").write_text(f"file_roots: [{tmp_path}]\n")
    ws.deploy("person:test")
    ws.refresh_policies()
    state = ws.start("paths", {"paths": [str(ws.root / ".soloist" / "x")]})
    drain(ws)
    assert ws.get_run(state).state == "failed"


def test_the_store_and_key_are_off_limits_wherever_they_live(tmp_path: Path) -> None:
    store = tmp_path / "elsewhere" / "state.db"
    key = tmp_path / "elsewhere" / "secret.key"
    root = write_workspace(tmp_path / "ws2", {"paths": PLAYBOOKS["paths"]}, TASKS)
    (root / "policies.yaml").write_text(f"file_roots: [{tmp_path / 'elsewhere'}]\n")
    with Workspace(root, database_url=f"sqlite:///{store}",
                   env={"SOLOIST_SECRET_KEY_FILE": str(key)}) as ws:
        ws.deploy("person:test")
        ws.refresh_policies()
        for path in (store, Path(f"{store}-wal"), key):
            run_id = ws.start("paths", {"paths": [str(path)]})
            drain(ws)
            run = ws.get_run(run_id)
            assert run.state == "failed", path
            assert "store or secret key" in (run.error or "")
        ok = ws.start("paths", {"paths": [str(tmp_path / "elsewhere" / "fine.txt")]})
        drain(ws)
        assert ws.get_run(ok).state == "done"
