"""A failed check goes to a person with the output's own reason, when it gives one."""

from __future__ import annotations

from pathlib import Path

from support.workspaces import write_workspace

from soloist.workspace import Workspace

TASKS = '''
def judge(ctx, verdict, reason=None):
    return {"verdict": verdict, **({"reason": reason} if reason is not None else {})}
'''

PLAYBOOK = """
name: judged
steps:
  - id: verify
    python: tasks:judge
    args: {verdict: "{{ inputs.verdict }}", reason: "{{ inputs.reason }}"}
    check: ["output.verdict == 'pass'"]
"""


def test_the_reason_of_a_failed_verdict_is_shown_to_the_person(tmp_path: Path,
                                                                db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"judged": PLAYBOOK}, TASKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        failing = ws.start("judged", {"verdict": "fail",
                                      "reason": "the claim 'fintech' has no source"})
        bare = ws.start("judged", {"verdict": "fail", "reason": ""})
        ws.worker(concurrency=2).run(until_idle=True)
        messages = {p.approval.run_id: p.approval.message for p in ws.approvals()}
        assert messages[failing] == ("check failed: output.verdict == 'pass': the claim "
                                     "'fintech' has no source")
        assert messages[bare] == "check failed: output.verdict == 'pass'"
