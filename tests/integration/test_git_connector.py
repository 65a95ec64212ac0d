"""The git connector through playbook runs, against a real ``git daemon`` (and a real
smart-HTTP server with Basic auth), on SQLite and PostgreSQL: every action, a replayed
commit made once, the revert compensation, a push that never forces, ``git.pushed``
starting a playbook, refused argument injection, a server that is down (transient) and
refused credentials (deterministic, one sentence, the password nowhere)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.git_http_server import GitHTTPServer
from support.git_server import GitTestServer, git_env
from support.netutil import free_port
from support.workspaces import write_workspace

from soloist.errors import GitFailed, TransientError
from soloist.execution.context import ToolCall
from soloist.workspace import Workspace

TASKS = '''
def boom(ctx):
    raise ValueError("the later step failed")

def noop(ctx, **kw):
    return kw
'''

PLAYBOOKS = {
    "save": """
name: save
inputs: {type: object}
steps:
  - id: save
    tool: repo.commit
    args:
      files: {"notes/{{ inputs.name }}.md": "{{ inputs.text }}"}
      message: "{{ inputs.message }}"
      branch: "{{ inputs.branch }}"
      push: "{{ inputs.push }}"
    retry: {max_attempts: 1}
""",
    "save_then_fail": """
name: save_then_fail
steps:
  - id: save
    tool: repo.commit
    args: {files: {"a.md": "doomed\\n"}, message: "A doomed change"}
  - {id: fail, python: "tasks:boom"}
""",
    "release": """
name: release
steps:
  - id: save
    tool: repo.commit
    args: {files: {"CHANGES.md": "v1\\n"}, message: "Release notes"}
  - {id: feature, tool: repo.branch, args: {name: feature/next}}
  - {id: tag, tool: repo.tag, args: {name: v1, message: "the first release"}}
  - {id: log, tool: repo.log, args: {limit: 10}}
""",
    "publish": """
name: publish
steps:
  - {id: push, tool: repo.push, args: {branch: main}, retry: {max_attempts: 1}}
""",
    "on_push": """
name: on_push
triggers:
  - event: git.pushed
    when: "event.payload.ref == 'refs/heads/main'"
    inputs: {new: "{{ event.payload.new }}", commits: "{{ event.payload.commits }}"}
steps:
  - {id: seen, python: "tasks:noop", args: {new: "{{ inputs.new }}"}}
""",
}


def _toml(remote: str, extra: str = "") -> str:
    return f'''[connectors.repo]
kind = "git"
remote = "{remote}"
author_name = "Ada Lovelace"
author_email = "ada@example.com"
{extra}'''


@pytest.fixture
def notes(git_server: GitTestServer) -> str:
    return git_server.create_repository("notes")


@pytest.fixture
def ws(tmp_path: Path, db_url: str, notes: str) -> Iterator[Workspace]:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml=_toml(notes))
    with Workspace(root, database_url=db_url) as workspace:
        workspace.deploy("person:test")
        yield workspace


def drain(ws: Workspace) -> None:
    ws.worker(concurrency=2).run(until_idle=True)


def save(ws: Workspace, **inputs: Any) -> str:
    values = {"name": "first", "text": "hello\n", "message": "Add a note", "branch": "main",
              "push": True, **inputs}
    run_id = ws.start("save", values)
    drain(ws)
    return run_id


def outside_clone(url: str, tmp_path: Path, name: str = "bob") -> Path:
    """Someone else's clone of the remote, worked with the plain git command line."""
    folder = tmp_path / name
    env = git_env(tmp_path)
    subprocess.run(["git", "clone", "--quiet", url, str(folder)], check=True, env=env,
                   capture_output=True)
    return folder


def outside_push(folder: Path, tmp_path: Path, file: str, message: str) -> str:
    env = git_env(tmp_path)
    (folder / file).write_text(message + "\n")
    for args in (["add", file], ["commit", "--quiet", "-m", message],
                 ["push", "--quiet", "origin", "HEAD:main"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, env=env,
                       capture_output=True)
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True,
                          env=env, capture_output=True, text=True).stdout.strip()


def test_a_commit_is_made_pushed_and_replayed_once(ws: Workspace, git_server: GitTestServer,
                                                  tmp_path: Path) -> None:
    run_id = save(ws)
    assert ws.get_run(run_id).state == "done"
    [step] = ws.show(run_id).steps
    result = step.output
    assert git_server.log("notes") == ["Add a note"]
    assert len(result["sha"]) == 40 and result["branch"] == "main"

    # The same intent again, from this process and from a host with no working copy yet:
    # the commit is found by its trailer, nothing new reaches the remote.
    tool = ws.tools.get("repo.commit")
    call = ToolCall(run_id, "save", "r-replay/save/0", str(ws.root))
    args = {"files": {"b.md": "one\n"}, "message": "Replayed"}
    first = tool.invoke(args, call)
    assert first["replayed"] is False and first["pushed"] is True
    assert tool.invoke(args, call) == {**first, "replayed": True}
    shutil.rmtree(ws.settings.state_dir / "connectors" / "repo")
    assert tool.invoke(args, call) == {**first, "replayed": True}
    assert git_server.log("notes") == ["Replayed", "Add a note"]
    bob = outside_clone(git_server.url("notes"), tmp_path)
    trailers = subprocess.run(["git", "-C", str(bob), "log", "-1", "--format=%(trailers)"],
                              capture_output=True, text=True, check=True,
                              env=git_env(tmp_path)).stdout
    assert "Soloist-Intent: r-replay/save/0" in trailers


def test_a_later_failure_reverts_the_commit_without_rewriting_history(
        ws: Workspace, git_server: GitTestServer, tmp_path: Path) -> None:
    run_id = ws.start("save_then_fail")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed" and "the later step failed" in (run.error or "")
    assert git_server.log("notes") == ['Revert "A doomed change"', "A doomed change"]
    bob = outside_clone(git_server.url("notes"), tmp_path)
    assert not (bob / "a.md").exists()


def test_branch_tag_and_log(ws: Workspace, git_server: GitTestServer,
                            tmp_path: Path) -> None:
    run_id = ws.start("release")
    drain(ws)
    assert ws.get_run(run_id).state == "done"
    steps = {s.step_id: s.output for s in ws.show(run_id).steps}
    sha = steps["save"]["sha"]
    assert steps["feature"] == {"branch": "feature/next", "sha": sha, "created": True}
    assert steps["tag"] == {"tag": "v1", "sha": sha, "moved": True}
    [logged] = steps["log"]
    assert logged["sha"] == sha and logged["author"] == "Ada Lovelace"
    assert logged["trailers"]["Soloist-Intent"] == [f"{run_id}/save/0"]
    remote = subprocess.run(["git", "ls-remote", git_server.url("notes")], check=True,
                            capture_output=True, text=True, env=git_env(tmp_path)).stdout
    refs = dict(reversed(line.split("\t")) for line in remote.splitlines())
    assert refs["refs/heads/main"] == refs["refs/heads/feature/next"] == sha
    assert "refs/tags/v1" in refs and refs["refs/tags/v1^{}"] == sha  # annotated

    # Again: the branch and the tag are there already, so nothing changes.
    tools, call = ws.tools, ToolCall(run_id, "again", f"{run_id}/again/0", str(ws.root))
    assert tools.get("repo.branch").invoke({"name": "feature/next", "from_ref": sha}, call) == {
        "branch": "feature/next", "sha": sha, "created": False}
    assert tools.get("repo.tag").invoke({"name": "v1", "ref": sha}, call) == {
        "tag": "v1", "sha": sha, "moved": False}
    # A branch of that name on a commit that is not the one asked for is refused.
    made = tools.get("repo.commit").invoke(
        {"files": {"other.md": "x\n"}, "message": "Elsewhere", "push": False}, call)
    with pytest.raises(GitFailed, match="already exists on the remote on another commit"):
        tools.get("repo.branch").invoke({"name": "feature/next", "from_ref": made["sha"]},
                                        call)


def test_a_push_never_forces_over_a_remote_that_moved(ws: Workspace, git_server: GitTestServer,
                                                       tmp_path: Path) -> None:
    save(ws, message="Base")
    local = save(ws, name="second", message="Not pushed yet", push=False)
    assert ws.show(local).steps[0].output["pushed"] is False
    bob = outside_clone(git_server.url("notes"), tmp_path)
    outside_push(bob, tmp_path, "bob.md", "Bob's change")

    run_id = ws.start("publish")
    drain(ws)
    run = ws.get_run(run_id)
    assert run.state == "failed"
    assert "non-fast-forward" in (run.error or "")
    assert git_server.log("notes") == ["Bob's change", "Base"]


def test_someone_elses_push_starts_a_playbook(ws: Workspace, git_server: GitTestServer,
                                             tmp_path: Path) -> None:
    save(ws, message="Base")
    [first] = ws.sync_connector("repo")  # the refs there now are where it starts
    assert first.accepted == 0
    bob = outside_clone(git_server.url("notes"), tmp_path)
    one = outside_push(bob, tmp_path, "b1.md", "Bob one")
    two = outside_push(bob, tmp_path, "b2.md", "Bob two")
    [report] = ws.sync_connector("repo")
    assert report.accepted == 1
    assert ws.sync_connector("repo")[0].accepted == 0  # nothing new since
    scheduler = ws.scheduler("s")
    for _ in range(3):
        scheduler.tick()
    drain(ws)
    [run] = ws.runs(playbook="on_push")
    assert run.state == "done"
    assert run.inputs["new"] == two
    assert [c["sha"] for c in run.inputs["commits"]] == [two, one]
    assert [c["message"] for c in run.inputs["commits"]] == ["Bob two", "Bob one"]
    status = ws.connector_status("repo")[0]
    assert status.cursors["refs"] == {"refs/heads/main": two}

    # A new branch brings only its own commits; a tag of a known commit brings none.
    env = git_env(tmp_path)
    (bob / "t.md").write_text("topic\n")
    for args in (["checkout", "--quiet", "-b", "topic"], ["tag", "v1", one], ["add", "t.md"],
                 ["commit", "--quiet", "-m", "Bob topic"],
                 ["push", "--quiet", "origin", "topic", "v1"]):
        subprocess.run(["git", "-C", str(bob), *args], check=True, env=env,
                       capture_output=True)
    topic = subprocess.run(["git", "-C", str(bob), "rev-parse", "HEAD"], check=True, env=env,
                           capture_output=True, text=True).stdout.strip()
    [source] = ws.connectors.get("repo").sources()
    polled = source.poll(status.cursors["refs"], 10)
    by_ref = {e.payload["ref"]: e for e in polled.events}
    assert set(by_ref) == {"refs/heads/topic", "refs/tags/v1"}
    assert [c["message"] for c in by_ref["refs/heads/topic"].payload["commits"]] == [
        "Bob topic"]
    assert by_ref["refs/heads/topic"].delivery_id == f"refs/heads/topic@{topic}"
    assert by_ref["refs/tags/v1"].payload["commits"] == []
    first = source.poll(status.cursors["refs"], 1)  # room for one: the cursor says so
    assert len(first.events) == 1 and first.more
    assert first.cursor == first.events[0].cursor != polled.cursor


def test_a_branch_or_path_starting_with_a_dash_is_refused(ws: Workspace,
                                                          git_server: GitTestServer) -> None:
    bad_branch = save(ws, branch="--upload-pack=touch pwned")
    assert ws.get_run(bad_branch).state == "failed"
    assert "starts with '-'" in (ws.get_run(bad_branch).error or "")
    tool = ws.tools.get("repo.commit")
    with pytest.raises(GitFailed, match="starts with '-'"):
        tool.invoke({"files": {"-rf": "x"}, "message": "m"},
                    ToolCall("r", "s", "r/s/9", str(ws.root)))
    with pytest.raises(GitFailed, match="starts with '-'"):
        ws.tools.get("repo.tag").invoke({"name": "--delete"},
                                        ToolCall("r", "t", "r/t/0", str(ws.root)))
    assert ws.connectors.get("repo").list_refs() == {}  # nothing reached the remote
    assert not (ws.root / "pwned").exists()


def test_a_remote_that_is_down_is_transient(tmp_path: Path, db_url: str) -> None:
    down = f"git://127.0.0.1:{free_port()}/notes.git"
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml=_toml(down, "timeout = 10"))
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy("person:test")
        run_id = save(ws)
        run = ws.get_run(run_id)
        assert run.state == "failed" and "cannot be reached" in (run.error or "")
        with pytest.raises(TransientError, match="cannot be reached"):
            ws.tools.get("repo.commit").invoke({"files": {"a": "b"}, "message": "m"},
                                               ToolCall("r", "s", "r/s/0", str(root)))
        with pytest.raises(TransientError, match="cannot be reached"):
            ws.test_connector("repo")


@pytest.fixture
def git_http() -> Iterator[GitHTTPServer]:
    with GitHTTPServer() as server:
        yield server


def test_credentials_come_from_a_secret_and_a_wrong_one_is_deterministic(
        tmp_path: Path, db_url: str, git_http: GitHTTPServer) -> None:
    url = git_http.create_repository("notes")
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS, toml=_toml(
        url, 'username = "ada"\npassword = "secret:GIT_PASSWORD"\n'))
    wrong = "Wr0ng-passw0rd"
    with Workspace(root, database_url=db_url) as ws:
        ws.secrets.set("GIT_PASSWORD", wrong, "person:test")
        ws.deploy("person:test")
        run_id = save(ws)
        run = ws.get_run(run_id)
        assert run.state == "failed"
        assert run.error is not None and "authentication failed" in run.error
        assert wrong not in run.error and "\n" not in run.error
        with pytest.raises(GitFailed, match="authentication failed") as refused:
            ws.tools.get("repo.commit").invoke({"files": {"a": "b"}, "message": "m"},
                                               ToolCall("r", "s", "r/s/0", str(root)))
        assert refused.value.kind == "deterministic" and wrong not in str(refused.value)

    with Workspace(root, database_url=db_url) as ws:
        ws.secrets.set("GIT_PASSWORD", git_http.password, "person:test")
        assert ws.test_connector("repo") == f"listed the refs of {url}: 0 branch(es) and 0 tag(s)"
        done = save(ws)
        assert ws.get_run(done).state == "done"
        assert "1 branch(es)" in ws.test_connector("repo")
        config = (ws.settings.state_dir / "connectors" / "repo" / "work" / ".git" / "config")
        assert git_http.password not in config.read_text()


def test_a_new_branch_starts_from_the_connectors_branch(ws: Workspace,
                                                       git_server: GitTestServer) -> None:
    save(ws, message="Base")
    save(ws, name="a", message="On a", branch="a")
    save(ws, name="b", message="On b", branch="b")
    assert git_server.log("notes", "a") == ["On a", "Base"]
    assert git_server.log("notes", "b") == ["On b", "Base"]
    logged = ws.tools.get("repo.log").invoke({"ref": "b"}, ToolCall("r", "s", "k", "."))
    assert [c["message"].splitlines()[0] for c in logged] == ["On b", "Base"]
