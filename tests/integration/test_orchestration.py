"""The run lifecycle end to end, in process, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import InputError, InvalidState, NotFound
from soloist.workspace import Workspace

TASKS = '''
from soloist.errors import TransientError, SemanticError

CALLS = {}

def noop(ctx, **kw):
    return {"step": ctx.step_id, "attempt": ctx.attempt, **kw}

def flaky(ctx, fail_times):
    if ctx.attempt <= fail_times:
        raise TransientError("upstream said 503")
    return {"attempt": ctx.attempt}

def boom(ctx):
    raise ValueError("bad input")

def doubtful(ctx):
    if ctx.guidance:
        return {"fixed": ctx.guidance}
    raise SemanticError("the total looks wrong")

def stage(ctx, line):
    ctx.stage("file.append", {"path": "effects.txt", "line": line})
    return {"staged": line}
'''

PLAYBOOKS = {
    "three": """
name: three
inputs: {type: object, properties: {n: {type: integer}}}
steps:
  - {id: a, python: "tasks:noop", args: {n: "{{ inputs.n }}"}}
  - {id: b, python: "tasks:noop", args: {prev: "{{ steps.a.output.n }}"}}
  - {id: c, python: "tasks:noop", when: "inputs.n > 1"}
""",
    "flaky": """
name: flaky
steps:
  - id: f
    python: tasks:flaky
    args: {fail_times: "{{ inputs.fail_times }}"}
    retry: {max_attempts: 3, backoff: 0.01, jitter: 0}
""",
    "effects": """
name: effects
steps:
  - id: one
    python: tasks:stage
    args: {line: one}
    compensate: {tool: file.append, args: {path: undo.txt, line: "undo one"}}
  - id: two
    tool: file.append
    args: {path: effects.txt, line: two}
    compensate: {tool: file.append, args: {path: undo.txt, line: "undo two"}}
  - id: three
    python: tasks:boom
""",
    "gated": """
name: gated
steps:
  - id: send
    tool: file.append
    args: {path: sent.txt, line: "hello {{ inputs.who }}"}
    gate: {message: "Send hello to {{ inputs.who }}?"}
    compensate: {tool: file.append, args: {path: undo.txt, line: "unsend"}}
  - id: confirm
    gate: true
""",
    "doubtful": """
name: doubtful
steps:
  - {id: d, python: "tasks:doubtful"}
""",
    "follower": """
name: follower
triggers:
  - event: run.completed.three
    when: "event.payload.inputs.n == 2"
    inputs: {n: "{{ event.payload.inputs.n }}"}
steps:
  - {id: x, python: "tasks:noop"}
""",
    "slowpoke": """
name: slowpoke
budget: {deadline: 0.2s}
steps:
  - {id: wait, gate: true}
""",
}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def drain(ws: Workspace) -> None:
    ws.worker(concurrency=4).run(until_idle=True)


def states(ws: Workspace, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state for s in ws.show(run_id).steps}


def test_three_steps_run_in_order_and_when_skips(ws: Workspace) -> None:
    big, small = ws.start("three", {"n": 2}), ws.start("three", {"n": 1})
    drain(ws)
    assert ws.get_run(big).state == "done"
    assert states(ws, big) == {"a": "done", "b": "done", "c": "done"}
    assert states(ws, small)["c"] == "skipped"
    assert ws.get_run(small).state == "done"
    detail = ws.show(big)
    assert detail.steps[1].output == {"step": "b", "attempt": 1, "prev": 2}
    moves = [e.data for e in ws.log(run_id=big)
             if e.kind == "step.transition" and e.step_id == "a"]
    assert [m.get("path") for m in moves] == [
        ["ready", "claimed", "executing"], ["executing", "checking", "persisting", "done"]]
    assert moves[1]["readied"] == ["b"]


def test_inputs_are_validated_at_start(ws: Workspace) -> None:
    with pytest.raises(InputError, match="n"):
        ws.start("three", {"n": "two"})
    with pytest.raises(NotFound, match="no playbook named 'nope'"):
        ws.start("nope", {})
    assert ws.runs() == []


def test_transient_failures_retry_then_succeed_or_fail(ws: Workspace) -> None:
    ok, bad = ws.start("flaky", {"fail_times": 2}), ws.start("flaky", {"fail_times": 5})
    deadline = time.time() + 20
    while time.time() < deadline and {ws.get_run(ok).state, ws.get_run(bad).state} - {
            "done", "failed"}:
        drain(ws)
        time.sleep(0.02)
    assert ws.get_run(ok).state == "done"
    assert ws.show(ok).steps[0].attempt == 3
    failed = ws.get_run(bad)
    assert failed.state == "failed"
    assert "503" in (failed.error or "")


def test_failure_compensates_dispatched_steps_in_reverse(ws: Workspace) -> None:
    run_id = ws.start("effects")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "bad input" in (run.error or "")
    root = ws.root
    effects = (root / "effects.txt").read_text().splitlines()
    assert [line.split("\t")[1] for line in effects] == ["one", "two"]
    undo = (root / "undo.txt").read_text().splitlines()
    assert [line.split("\t")[1] for line in undo] == ["undo two", "undo one"]
    assert states(ws, run_id)["one"] == "compensated"


def test_gate_approve_then_reject_compensates(ws: Workspace) -> None:
    run_id = ws.start("gated", {"who": "ada"})
    drain(ws)
    [pending] = ws.approvals()
    assert pending.approval.message == "Send hello to ada?"
    assert [i.args for i in pending.intents] == [{"path": "sent.txt", "line": "hello ada"}]
    assert not (ws.root / "sent.txt").exists()  # nothing leaves before the gate
    ws.approve(pending.approval.id, "fine", actor="person:ada")
    with pytest.raises(InvalidState, match="already decided"):
        ws.approve(pending.approval.id)
    drain(ws)
    assert (ws.root / "sent.txt").read_text().count("hello ada") == 1
    [second] = ws.approvals()
    assert second.approval.step_id == "confirm"
    ws.reject(second.approval.id, "changed my mind", actor="person:test")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "changed my mind" in (run.error or "")
    assert "unsend" in (ws.root / "undo.txt").read_text()
    decided = [e for e in ws.log(run_id=run_id) if e.kind == "approval.decided"]
    assert [(e.data["decision"], e.actor) for e in decided] == [
        ("approved", "person:ada"), ("rejected", "person:test")]


def test_semantic_failure_goes_to_a_gate_and_retry_passes_guidance(ws: Workspace) -> None:
    run_id = ws.start("doubtful")
    drain(ws)
    [pending] = ws.approvals()
    assert pending.approval.reason == "semantic"
    assert "looks wrong" in pending.approval.message
    ws.retry(pending.approval.id, "use the net amount")
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    assert ws.show(run_id).steps[0].output == {"fixed": "use the net amount"}


def test_cancel_runs_compensation_and_closes_gates(ws: Workspace) -> None:
    run_id = ws.start("gated", {"who": "bob"})
    drain(ws)
    [pending] = ws.approvals()
    ws.approve(pending.approval.id)
    drain(ws)
    ws.cancel(run_id)
    drain(ws)
    assert ws.get_run(run_id).state == "cancelled"
    assert ws.approvals() == []
    assert "unsend" in (ws.root / "undo.txt").read_text()
    with pytest.raises(InvalidState):
        ws.cancel(run_id)


def test_a_step_that_kills_every_worker_fails_after_its_attempts(ws: Workspace) -> None:
    """A poison step: each worker that claims it dies (its lease expires) until the step's
    retry.max_attempts (3 by default) are used up; then it fails and so does the run."""
    run_id = ws.start("three", {"n": 2})
    reaper = ws.worker(concurrency=1, name="reaper")
    for attempt in (1, 2, 3):
        with ws.store.transaction() as tx:
            [row] = tx.steps.claim(f"doomed-{attempt}", time.time(), 0.01, 1)
        assert (row.step_id, row.attempt) == ("a", attempt)
        time.sleep(0.03)
        assert reaper.reap_expired(time.time()) == 1
        step = next(s for s in ws.show(run_id).steps if s.step_id == "a")
        assert step.state == ("failed" if attempt == 3 else "ready")
    run = ws.get_run(run_id)
    assert run.state == "failed"
    assert "PoisonStep" in (run.error or "") and "attempt 3 of 3" in (run.error or "")
    from soloist.store.base import StepUpdate

    with ws.store.transaction() as tx:
        late = tx.steps.update_fenced([StepUpdate(row.id, row.lease_token, "done")])
    assert late == [row.id]  # the last worker, had it come back, is refused
    reasons = [e.data.get("reason", "") for e in ws.log(run_id=run_id)
               if e.kind == "step.transition"]
    assert sum("expired" in r for r in reasons) == 2


def test_expired_lease_is_reclaimed_and_the_stale_worker_is_refused(ws: Workspace) -> None:
    run_id = ws.start("three", {"n": 2})
    stale = ws.worker(concurrency=1, name="stale")
    now = time.time()
    with ws.store.transaction() as tx:
        [row] = tx.steps.claim("stale", now, 0.01, 1)
    time.sleep(0.05)
    fresh = ws.worker(concurrency=2, name="fresh")
    assert fresh.reap_expired(time.time()) == 1
    fresh.run(until_idle=True)
    assert ws.get_run(run_id).state == "done"
    with ws.store.transaction() as tx:
        from soloist.store.base import StepUpdate

        refused = tx.steps.update_fenced([StepUpdate(row.id, row.lease_token, "done")])
    assert refused == [row.id]
    assert stale.completed == 0
    a = ws.show(run_id).steps[0]
    assert a.attempt == 2


def test_completion_event_triggers_a_subscribed_playbook(ws: Workspace) -> None:
    ws.start("three", {"n": 2})
    ws.start("three", {"n": 3})  # the trigger's condition filters this one out
    drain(ws)
    scheduler = ws.scheduler("test")
    assert scheduler.tick()["events"] == 1
    drain(ws)
    [run] = ws.runs(playbook="follower")
    assert run.state == "done" and run.inputs == {"n": 2}
    assert run.trigger["event"] == "run.completed.three"


def test_deadline_fails_a_run(ws: Workspace) -> None:
    run_id = ws.start("slowpoke")
    drain(ws)
    time.sleep(0.3)
    assert ws.scheduler("test").tick()["deadlines"] == 1
    run = ws.get_run(run_id)
    assert run.state == "failed" and "deadline" in (run.error or "")


def test_audit_chain_detects_an_edited_event(ws: Workspace) -> None:
    ws.start("three", {"n": 2})
    drain(ws)
    assert ws.verify().ok
    edit_event(ws, 5)
    report = ws.verify()
    assert not report.ok and report.broken_at == 5 and "edited" in report.problem


def edit_event(ws: Workspace, seq: int) -> None:
    """What an attacker with database access would do: drop the guard, change a row."""
    url = ws.store.url
    if url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        con.execute("DROP TRIGGER events_no_update")
        con.execute("UPDATE events SET data = '{\"forged\":true}' WHERE seq = ?", (seq,))
        con.commit()
        con.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute("ALTER TABLE events DISABLE TRIGGER USER")
            con.execute("UPDATE events SET data = '{\"forged\":true}' WHERE seq = %s", (seq,))


def test_deploy_versions_only_what_changed_and_runs_pin_versions(ws: Workspace) -> None:
    first = ws.start("three", {"n": 1})
    report = ws.deploy()
    assert report.deployed == []
    path = ws.root / "playbooks" / "three.yaml"
    path.write_text(path.read_text().replace("name: three", "name: three\ndescription: v2"))
    report = ws.deploy()
    assert report.deployed == [("playbook", "three", 2)]
    second = ws.start("three", {"n": 1})
    drain(ws)
    assert ws.get_run(first).playbook_version == 1
    assert ws.get_run(second).playbook_version == 2
    assert ws.rollback("playbook", "three", 1).version == 3
    assert ws.registry.latest_playbook("three").description == ""


def test_playbook_concurrency_limit_is_respected(tmp_path: Path, db_url: str) -> None:
    playbook = """
name: limited
concurrency: 1
steps:
  - {id: s, tool: sleep, args: {seconds: 0.05}}
"""
    root = write_workspace(tmp_path / "lim", {"limited": playbook})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ids = [ws.start("limited") for _ in range(4)]
        ws.worker(concurrency=4).run(until_idle=True)
        assert_one_at_a_time(ws, ids)


def assert_one_at_a_time(ws: Workspace, run_ids: list[str]) -> None:
    """All runs are done and no two of their steps ever ran at the same time."""
    spans = sorted((s.started_at or 0, s.finished_at or 0)
                   for run_id in run_ids for s in ws.show(run_id).steps)
    assert all(ws.get_run(r).state == "done" for r in run_ids)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.001


def test_policy_rules_apply_to_what_python_steps_stage(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"effects": PLAYBOOKS["effects"].replace(
        "  - id: three\n    python: tasks:boom\n", "")}, TASKS)
    (root / "policies.yaml").write_text("""
rules:
  - name: appends-need-a-person
    match: {tool: file.append, when: "args.line == 'one'"}
    decision: needs_approval
    reason: the first line is checked
  - name: no-second-line
    match: {tool: file.append, when: "args.line == 'two'"}
    decision: deny
    reason: nobody writes two
""")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("effects")
        drain(ws)
        [pending] = ws.approvals()
        assert "the first line is checked" in pending.approval.message
        ws.approve(pending.approval.id)
        drain(ws)
        run = ws.get_run(run_id)
        assert run.state == "failed" and "nobody writes two" in (run.error or "")
        assert "undo one" in (ws.root / "undo.txt").read_text()  # compensated
        rules = [e.data["rule"] for e in ws.log(run_id=run_id) if e.kind == "policy.decision"]
        assert rules == ["appends-need-a-person", "no-second-line"]
