"""``metrics.report``: a playbook reads the operator measures, as `soloist metrics` does."""

from __future__ import annotations

from pathlib import Path

from support.workspaces import write_workspace

from soloist.workspace import Workspace

PLAYBOOKS = {
    "chore": "name: chore\nsteps:\n  - {id: a, tool: note, args: {text: hi}}\n",
    "review": """
name: review
steps:
  - {id: figures, tool: metrics.report, args: {days: 7}}
""",
}


def test_a_step_reads_the_measures(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        ws.start("chore", {})
        ws.worker(concurrency=2).run(until_idle=True)
        run_id = ws.start("review", {})
        ws.worker(concurrency=2).run(until_idle=True)
        figures = ws.show(run_id).steps[0].output
        expected = ws.metrics(7)
        assert figures["days"] == 7
        chore = next(p for p in figures["by_playbook"] if p["playbook"] == "chore")
        assert chore == next(p for p in expected["by_playbook"] if p["playbook"] == "chore")
        assert chore["completion_rate"] == 1.0
        assert ws.tools.get("metrics.report").effect_for({}) == "read"
