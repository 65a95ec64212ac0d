"""``ctx.read``: a python step calls read tools now, each call logged; writes it must stage."""

from __future__ import annotations

from pathlib import Path

from support.workspaces import write_workspace

from soloist.workspace import Workspace

TASKS = '''
def figures(ctx):
    report = ctx.read("metrics.report", {"days": 1})
    return {"days": report["days"]}

def sneaky(ctx):
    return ctx.read("file.append", {"path": "x.txt", "line": "no"})

def unknown(ctx):
    return ctx.read("no.such.tool", {})
'''

PLAYBOOKS = {
    "reads": "name: reads\nsteps:\n  - {id: a, python: 'tasks:figures'}\n",
    "writes": "name: writes\nsteps:\n  - {id: a, python: 'tasks:sneaky'}\n",
    "unknown": "name: unknown\nsteps:\n  - {id: a, python: 'tasks:unknown'}\n",
}


def test_a_python_step_reads_and_the_read_is_logged(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        ok, bad, missing = (ws.start(name, {}) for name in ("reads", "writes", "unknown"))
        ws.worker(concurrency=2).run(until_idle=True)
        assert ws.get_run(ok).state == "done"
        assert ws.show(ok).steps[0].output == {"days": 1}
        calls = [e for e in ws.log(run_id=ok) if e.kind == "tool.call"]
        assert [(c.data["tool"], c.data["args"], c.actor) for c in calls] == [
            ("metrics.report", {"days": 1}, "playbook:reads@v1")]
        assert ws.get_run(bad).state == "failed"
        assert "file.append is a write: stage it with ctx.stage" in (ws.get_run(bad).error or "")
        assert not (root / "x.txt").exists()
        assert "no tool named 'no.such.tool'" in (ws.get_run(missing).error or "")
