"""At dispatch, a wait is not an attempt and an unprovable outcome goes to a person.

A tool that raises :class:`Throttled` (a limit, a 429) makes its step ready again later
with the same attempt, however small ``max_attempts``; a tool that raises
:class:`Unconfirmed` (a send cut short that nothing can prove) puts the step before a
person with an ``unconfirmed`` approval showing that intent: approving dispatches it again,
``resolve`` records it as done without calling the tool, ``retry`` is refused with the
three choices. On both store backends.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from soloist.errors import InvalidState
from soloist.workspace import Workspace

TOOLS = '''
from pathlib import Path
from soloist import Throttled, Unconfirmed, tool

HERE = Path(__file__).parent


def _count(name):
    path = HERE / name
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


@tool("busy.send", effect="write")
def busy_send(text: str) -> dict:
    """Answers 429 three times, then takes it."""
    if _count("busy.calls") <= 3:
        raise Throttled("the server said 429", retry_after=0.05)
    return {"sent": text}


@tool("unsure.send", effect="write")
def unsure_send(text: str) -> dict:
    """Cut short the first time, with no way to know whether it arrived."""
    if _count("unsure.calls") == 1:
        raise Unconfirmed("the process stopped while this was being sent at "
                          "2026-12-01T10:00:00Z: send again, or mark as sent?")
    return {"sent": text}
'''

BUSY = """
name: busy
steps:
  - {id: send, tool: busy.send, args: {text: hi}, retry: {max_attempts: 1}}
"""
UNSURE = """
name: unsure
steps:
  - {id: send, tool: unsure.send, args: {text: hello}, retry: {max_attempts: 1}}
  - {id: after, tool: note, args: {text: next}}
"""


def workspace(root: Path) -> Path:
    module = f"waits_{uuid.uuid4().hex[:8]}"
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "busy.yaml").write_text(BUSY)
    (root / "playbooks" / "unsure.yaml").write_text(UNSURE)
    (root / f"{module}.py").write_text(TOOLS)
    (root / "soloist.toml").write_text(
        f'[workspace]\nname = "t"\n[tools]\nmodules = ["{module}"]\n')
    return root


def calls(root: Path, name: str) -> int:
    path = root / f"{name}.calls"
    return int(path.read_text()) if path.exists() else 0


def test_a_throttled_dispatch_waits_without_spending_an_attempt(tmp_path: Path,
                                                                db_url: str) -> None:
    root = workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("busy")
        ws.worker().run(until_idle=True)
        detail = ws.show(run_id)
        assert detail.run.state == "done"
        assert [(s.step_id, s.attempt) for s in detail.steps] == [("send", 1)]
        assert calls(root, "busy") == 4
        waits = [e for e in ws.log(run_id) if e.kind == "step.transition"
                 and e.data.get("waits")]
        assert len(waits) == 3
        assert all(e.data["kind"] == "transient" for e in waits)


def test_an_unconfirmed_dispatch_asks_a_person_and_approving_sends_again(
        tmp_path: Path, db_url: str) -> None:
    root = workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("unsure")
        ws.worker().run(until_idle=True)
        [pending] = ws.approvals()
        assert pending.approval.reason == "unconfirmed"
        assert "being sent at 2026-12-01T10:00:00Z" in pending.approval.message
        assert [(i.tool, i.args, i.status) for i in pending.intents] == [
            ("unsure.send", {"text": "hello"}, "staged")]
        with pytest.raises(InvalidState, match="sends it again"):
            ws.retry(pending.approval.id, "try harder")
        ws.approve(pending.approval.id, "send it again")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert calls(root, "unsure") == 2
        [intent] = [i for i in ws.show(run_id).intents if i.step_id == "send"]
        assert (intent.status, intent.result) == ("dispatched", {"sent": "hello"})


def test_resolving_an_unconfirmed_dispatch_records_it_without_calling_again(
        tmp_path: Path, db_url: str) -> None:
    root = workspace(tmp_path / "ws")
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        run_id = ws.start("unsure")
        ws.worker().run(until_idle=True)
        [pending] = ws.approvals()
        ws.resolve(pending.approval.id, "it is in their inbox", actor="person:ada")
        ws.worker().run(until_idle=True)
        assert ws.get_run(run_id).state == "done"
        assert calls(root, "unsure") == 1
        [intent] = [i for i in ws.show(run_id).intents if i.step_id == "send"]
        assert intent.status == "dispatched"
        assert intent.result == {"confirmed_by": "person:ada", "note": "it is in their inbox"}
        decided = [e for e in ws.log(run_id) if e.kind == "approval.decided"]
        assert [e.data["decision"] for e in decided] == ["resolved"]
