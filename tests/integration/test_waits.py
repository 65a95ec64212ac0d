"""Wait steps, runs stopped by an event, and the workspace's clock, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import DefinitionError, InputError, InvalidState
from soloist.workspace import Workspace

DAY = 86400.0

TASKS = '''
def noop(ctx, **kw):
    return {"step": ctx.step_id, **kw}
'''

PLAYBOOKS = {
    # Asks, then waits up to three days for the answer to this run.
    "asker": """
name: asker
steps:
  - {id: ask, python: "tasks:noop"}
  - id: answer
    wait:
      event: test.reply
      when: "event.payload.to == run.id"
      timeout: 3d
  - id: after
    python: tasks:noop
    args: {timed_out: "{{ steps.answer.output.timed_out }}"}
""",
    # The same, but a person approves the question first.
    "gated-asker": """
name: gated-asker
steps:
  - {id: ask, gate: {message: "Ask?"}}
  - id: answer
    wait: {event: test.reply, when: "event.payload.key == inputs.key", timeout: 3d}
""",
    # A follow-up after three days, at a gate, unless the reply comes first.
    "outreach": """
name: outreach
stop_on:
  - event: test.reply
    when: "event.payload.to == run.id"
steps:
  - id: send
    tool: file.append
    args: {path: sent.txt, line: "first {{ run.id }}"}
  - id: pause
    wait: {for: 3d}
  - id: follow-up
    tool: file.append
    args: {path: sent.txt, line: "follow-up {{ run.id }}"}
    gate: {message: "Send the follow-up?"}
""",
    "replier": """
name: replier
steps:
  - id: say
    emit: test.reply
    args: {to: "{{ inputs.to }}", key: "{{ inputs.key }}", text: "interested"}
""",
}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml="test_clock = true\n")
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def drain(ws: Workspace) -> None:
    ws.worker(concurrency=4).run(until_idle=True)


def tick(ws: Workspace) -> dict[str, int]:
    return ws.scheduler("s").tick()


def states(ws: Workspace, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state for s in ws.show(run_id).steps}


def reply(ws: Workspace, to: str = "", key: str = "") -> None:
    ws.start("replier", {"to": to, "key": key})
    drain(ws)


def output(ws: Workspace, run_id: str, step_id: str) -> object:
    return next(s.output for s in ws.show(run_id).steps if s.step_id == step_id)


def test_a_wait_ends_with_the_event_it_waits_for(ws: Workspace) -> None:
    run_id = ws.start("asker", {})
    other = ws.start("asker", {})
    drain(ws)
    assert states(ws, run_id)["answer"] == "waiting"
    reply(ws, to=run_id)
    assert tick(ws)["waits"] == 1  # only the run the reply names
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    answer = output(ws, run_id, "answer")
    assert isinstance(answer, dict) and answer["timed_out"] is False
    assert answer["event"]["topic"] == "test.reply"
    assert answer["event"]["payload"]["text"] == "interested"
    assert output(ws, run_id, "after") == {"step": "after", "timed_out": False}
    assert states(ws, other)["answer"] == "waiting"
    moves = [e.data for e in ws.log(run_id=run_id)
             if e.kind == "step.transition" and e.step_id == "answer"]
    assert {"from": "waiting", "to": "ready", "ended": "event"}.items() <= moves[2].items()


def test_a_wait_times_out_on_the_workspace_clock(ws: Workspace) -> None:
    run_id = ws.start("asker", {})
    drain(ws)
    ws.clock.advance(2 * DAY, "person:test")
    assert tick(ws)["waits"] == 0
    ws.clock.advance(DAY + 60, "person:test")
    assert tick(ws)["waits"] == 1
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    assert output(ws, run_id, "answer") == {"timed_out": True, "event": None}
    assert any(e.kind == "clock.advanced" for e in ws.log())
    reply(ws, to=run_id)  # too late: nothing is waiting any more
    assert tick(ws)["waits"] == 0


def test_an_event_that_came_before_the_wait_began_is_not_missed(ws: Workspace) -> None:
    run_id = ws.start("gated-asker", {"key": "k1"})
    drain(ws)
    reply(ws, key="k1")
    tick(ws)  # routed while nothing waits for it yet
    approval = ws.approvals(run_id=run_id)[0].approval.id
    ws.approve(approval, None, actor="person:test")
    drain(ws)  # the wait begins, looks back, and ends at once
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    answer = output(ws, run_id, "answer")
    assert isinstance(answer, dict) and answer["event"]["payload"]["key"] == "k1"


def test_a_reply_at_the_follow_ups_gate_withdraws_it(ws: Workspace) -> None:
    run_id = ws.start("outreach", {})
    drain(ws)
    ws.clock.advance(3 * DAY + 1, "person:test")
    tick(ws)
    drain(ws)
    waiting = ws.approvals(run_id=run_id)
    assert [w.approval.step_id for w in waiting] == ["follow-up"]
    reply(ws, to=run_id)
    tick(ws)
    run = ws.get_run(run_id)
    assert run.state == "done"
    assert states(ws, run_id) == {"send": "done", "pause": "done", "follow-up": "skipped"}
    with pytest.raises(InvalidState, match="withdrawn"):
        ws.approve(waiting[0].approval.id, None, actor="person:test")
    drain(ws)
    sent = (ws.root / "sent.txt").read_text().splitlines()  # key, tab, line
    assert [line.split("\t")[1] for line in sent] == [f"first {run_id}"]
    stopped = [e.data for e in ws.log(run_id=run_id) if e.kind == "run.stopped"]
    assert stopped[0]["skipped"] == ["follow-up"] and stopped[0]["withdrawn"] == 1
    intents = ws.show(run_id).intents
    assert [i.status for i in intents if i.step_id == "follow-up"] == ["discarded"]


def test_a_reply_while_waiting_stops_the_run_before_any_follow_up(ws: Workspace) -> None:
    run_id = ws.start("outreach", {})
    other = ws.start("outreach", {})
    drain(ws)
    reply(ws, to=run_id)
    tick(ws)
    assert ws.get_run(run_id).state == "done"
    assert states(ws, run_id) == {"send": "done", "pause": "skipped", "follow-up": "skipped"}
    assert ws.get_run(other).state == "running"  # the reply was not to it
    ws.clock.advance(3 * DAY + 1, "person:test")
    tick(ws)
    drain(ws)
    assert [w.approval.run_id for w in ws.approvals()] == [other]


def test_the_clock_of_a_real_workspace_does_not_move(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "real", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as ws:
        with pytest.raises(InvalidState, match="test_clock = true"):
            ws.clock.advance(DAY, "person:test")
        assert ws.clock.read().offset == 0.0
    root = write_workspace(tmp_path / "rehearsal", PLAYBOOKS, TASKS, toml="test_clock = true\n")
    with Workspace(root, database_url=db_url) as ws:
        with pytest.raises(InputError, match="forward"):
            ws.clock.advance(-DAY, "person:test")
        assert ws.clock.advance(DAY, "person:test").offset == DAY


@pytest.mark.parametrize(("step", "problem"), [
    ("{id: w, wait: {event: a.b, for: 1d}}", "exactly one of event"),
    ("{id: w, wait: {for: 1d, timeout: 2d}}", "when and timeout belong"),
    ("{id: w, wait: {event: a.b, when: 'steps.x.output'}}", "reads 'steps'"),
    ("{id: w, wait: {event: a.b}, gate: true}", "has no gate"),
])
def test_deploy_refuses_a_bad_wait(tmp_path: Path, step: str, problem: str) -> None:
    root = write_workspace(tmp_path / "ws", {"bad": f"name: bad\nsteps:\n  - {step}\n"})
    with Workspace(root) as ws, pytest.raises(DefinitionError) as failed:
        ws.deploy("person:test")
    assert problem in str(failed.value)


def test_deploy_refuses_a_stop_that_reads_a_step(tmp_path: Path) -> None:
    text = ("name: bad\nstop_on:\n  - {event: a.b, when: \"steps.x.output\"}\n"
            "steps:\n  - {id: x, gate: true}\n")
    root = write_workspace(tmp_path / "ws", {"bad": text})
    with Workspace(root) as ws, pytest.raises(DefinitionError, match="reads 'steps'"):
        ws.deploy("person:test")
