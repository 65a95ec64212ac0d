"""A person retries a failed run from where it failed: the failed step and the steps its
failure cancelled go again, the done ones are not done twice, and a run that undid its
steps (its writes had undos, so it compensated) cannot be retried (on both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.runs import drain
from support.workspaces import write_workspace

from soloist.errors import InvalidState
from soloist.workspace import Workspace

TASKS = '''
from pathlib import Path

HERE = Path(__file__).parent


def count(ctx, name):
    path = HERE / f"{name}.{ctx.run_id}.count"
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    return {"name": name, "attempt": ctx.attempt}


def fragile(ctx):
    if (HERE / "broken.flag").exists():
        raise ValueError("the ledger is closed")
    return count(ctx, "fragile")
'''
# ``side`` runs beside ``mail`` and is done before ``fragile`` fails (fragile needs it): a
# step still executing when its run fails is cancelled, and goes again on a retry.
PLAYBOOKS = {
    "chain": """
name: chain
steps:
  - {id: first, python: "tasks:count", args: {name: first}}
  - {id: mail, python: "tasks:count", args: {name: mail}, needs: [first]}
  - {id: fragile, python: "tasks:fragile", needs: [mail, side]}
  - {id: last, python: "tasks:count", args: {name: last}, needs: [fragile]}
  - {id: side, python: "tasks:count", args: {name: side}, needs: [first]}
""",
    "undone": """
name: undone
steps:
  - id: write
    tool: file.append
    args: {path: sent.txt, line: "undone"}
    compensate: {tool: file.append, args: {path: undo.txt, line: "undo"}}
  - {id: fragile, python: "tasks:fragile", needs: [write]}
""",
}


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy()
        yield workspace


def counted(ws: Workspace, name: str, run_id: str) -> str:
    return (ws.root / f"{name}.{run_id}.count").read_text()


def test_a_failed_run_goes_on_from_its_failed_step(ws: Workspace) -> None:
    (ws.root / "broken.flag").write_text("")
    run_id = ws.start("chain")
    drain(ws, run_id, "failed")
    states = {s.step_id: s.state for s in ws.show(run_id).steps}
    assert states["fragile"] == "failed" and states["last"] == "cancelled"
    (ws.root / "broken.flag").unlink()
    retried = ws.retry_run(run_id, "person:ada")
    assert retried.state == "running" and retried.error is None
    drain(ws, run_id)
    assert counted(ws, "first", run_id) == "1"  # done steps are not done again
    assert counted(ws, "mail", run_id) == "1"
    assert counted(ws, "side", run_id) == "1"
    assert counted(ws, "fragile", run_id) == "1"
    assert counted(ws, "last", run_id) == "1"
    steps = {s.step_id: s for s in ws.show(run_id).steps}
    assert steps["fragile"].attempt == 1 and steps["fragile"].error is None
    [event] = [e for e in ws.log(run_id=run_id) if e.kind == "run.retried"]
    assert event.actor == "person:ada" and "fragile" in event.data["steps"]
    assert "the ledger is closed" in event.data["error"]


def test_only_a_failed_run_that_undid_nothing_is_retried(ws: Workspace) -> None:
    (ws.root / "broken.flag").write_text("")
    undone = ws.start("undone")
    drain(ws, undone, "failed")
    with pytest.raises(InvalidState, match="undid its done steps"):
        ws.retry_run(undone)
    (ws.root / "broken.flag").unlink()
    fine = ws.start("chain")
    drain(ws, fine)
    with pytest.raises(InvalidState, match="only a failed run can be retried"):
        ws.retry_run(fine)


def test_failed_runs_are_retried_in_bulk_at_the_confirmed_count(ws: Workspace) -> None:
    from soloist.store.base import RunFilter

    (ws.root / "broken.flag").write_text("")
    runs = [ws.start("chain") for _ in range(3)]
    for run_id in runs:
        drain(ws, run_id, "failed")
    with pytest.raises(InvalidState, match="matches 3 failed runs now"):
        ws.retry_matching(RunFilter(playbook="chain"), 2)
    (ws.root / "broken.flag").unlink()
    retried, skipped = ws.retry_matching(RunFilter(playbook="chain"), 3)
    assert sorted(retried) == sorted(runs) and skipped == {}
    for run_id in runs:
        drain(ws, run_id)
        assert counted(ws, "first", run_id) == "1" and counted(ws, "last", run_id) == "1"
