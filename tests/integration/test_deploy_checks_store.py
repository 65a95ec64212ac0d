"""Deploy checks against a real store, on SQLite and PostgreSQL.

The example workspace deploys with every check on; a refused deploy leaves the registry
and the log as they were; a priority at either end of the accepted range fits the
database's column, so a run of such a playbook starts and finishes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.control.playbooks import PRIORITY_MAX, PRIORITY_MIN
from soloist.errors import DefinitionError, UserError
from soloist.interfaces.cli.scaffold import write_example
from soloist.workspace import Workspace


def test_the_example_deploys_and_a_refused_deploy_writes_nothing(tmp_path: Path,
                                                                  db_url: str) -> None:
    root = tmp_path / "company"
    write_example(root)
    with Workspace(root, database_url=db_url) as ws:
        report = ws.deploy("person:test")
        assert ("playbook", "invoice", 1) in report.deployed
        before = [(row.kind, row.name, row.version, row.digest) for row in ws.definitions()]
        events = len(ws.log(limit=100_000))
        invoice = root / "playbooks" / "invoice.yaml"
        text = invoice.read_text()
        invoice.write_text(text.replace("python: tasks:send_invoice", "python: tasks:send_it")
                           + "  - {id: late, tool: note, args: {text: \"{{ steps.later.output }}"
                             "\"}}\n")
        with pytest.raises(DefinitionError) as info:
            ws.deploy("person:test")
        problems = info.value.problems
        assert len(problems) == 2, problems
        assert all(p.startswith("playbooks/invoice.yaml:") for p in problems), problems
        assert "tasks.py defines no 'send_it' (did you mean tasks:send_invoice?)" in problems[0]
        assert "reads steps.later, which is not a step" in problems[1]
        after = [(row.kind, row.name, row.version, row.digest) for row in ws.definitions()]
        assert after == before
        assert len(ws.log(limit=100_000)) == events


@pytest.mark.parametrize("priority", [PRIORITY_MAX, PRIORITY_MIN])
def test_a_priority_at_the_limits_fits_the_database(tmp_path: Path, db_url: str,
                                                    priority: int) -> None:
    root = write_workspace(tmp_path / "ws", {
        "edge": f"name: edge\npriority: {priority}\nsteps: [{{id: a, tool: note, "
                f"args: {{text: x}}}}]\n"})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        run_id = ws.start("edge")
        ws.worker(concurrency=1).run(until_idle=True)
        assert ws.get_run(run_id).state == "done"


def test_a_run_started_with_a_priority_beyond_the_limits_is_refused(tmp_path: Path,
                                                                     db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"p": "name: p\nsteps: [{id: a, tool: note}]\n"})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        for priority in (PRIORITY_MAX + 1, PRIORITY_MIN - 1):
            with pytest.raises(UserError, match=f"^priority {priority} is out of range"):
                ws.start("p", priority=priority)
        assert ws.runs() == []


def test_beyond_the_limits_nothing_is_deployed(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {
        "edge": f"name: edge\npriority: {PRIORITY_MAX + 1}\nsteps: [{{id: a, tool: note}}]\n"})
    with Workspace(root, database_url=db_url) as ws:
        with pytest.raises(DefinitionError, match=r"^playbooks/edge\.yaml:2:11: priority: "):
            ws.deploy("person:test")
        assert ws.definitions() == []
