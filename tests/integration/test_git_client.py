"""The git client against a real ``git daemon`` (tests/support/git_server.py): every
operation, its idempotency (a commit found again by its intent key, a push of what is
already there), and each failure with its kind: a refused push, unsafe paths and refs, an
unknown repository, a port nothing listens on, a server that never answers, refused
credentials, a payload that does not map to a Commit."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.git_http_server import GitHTTPServer
from support.git_server import GitTestServer, git_env
from support.netutil import HOST, free_port

from soloist.errors import DeterministicError, GitFailed, InvalidPayload, TransientError
from soloist.integrations.git import (
    INTENT_TRAILER,
    Author,
    GitClient,
    RefChange,
    changed_refs,
    ls_remote,
)
from soloist.integrations.git.client import _commit_of

ADA = Author("Ada Lovelace", "ada@example.test")


def _client(url: str, tmp_path: Path, name: str = "work") -> GitClient:
    client = GitClient(url, tmp_path / name, author=ADA, timeout=30)
    client.clone()
    return client


@pytest.fixture
def notes(git_server: GitTestServer) -> str:
    return git_server.create_repository("notes")


def test_commit_push_and_log_round_trip(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    made = client.commit("main", {"notes/first.md": b"first note\n"}, "Add the first note\n\n"
                         "Why it matters.", intent="run-1/step-2")
    assert client.push("main") is True

    assert git_server.log("notes") == ["Add the first note"]
    assert (tmp_path / "work" / "notes" / "first.md").read_bytes() == b"first note\n"
    [read] = client.log("main")
    assert read == made
    assert read.author == "Ada Lovelace" and read.email == "ada@example.test"
    assert read.trailer(INTENT_TRAILER) == "run-1/step-2"
    assert read.message.startswith("Add the first note\n\nWhy it matters.")
    assert read.date.tzinfo is not None
    assert len(read.sha) == 40

    # A fresh clone reads the same commit back from the server.
    [again] = _client(notes, tmp_path, "other").log("main")
    assert again == made


def test_a_second_commit_with_the_same_key_returns_the_first(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    first = client.commit("main", {"a.txt": b"one\n"}, "one", intent="key-1")
    second = client.commit("main", {"a.txt": b"two\n"}, "two", intent="key-1")
    assert second == first
    assert len(client.log("main")) == 1
    assert (tmp_path / "work" / "a.txt").read_bytes() == b"one\n"
    # Another key that is a prefix of this one is a different intent.
    other = client.commit("main", {"a.txt": b"one\n"}, "same content", intent="key-")
    assert other.sha != first.sha and other.trailer(INTENT_TRAILER) == "key-"
    client.push("main")

    # After a crash that lost the workdir, a new clone finds the pushed commit.
    fresh = _client(notes, tmp_path, "fresh")
    assert fresh.commit("main", {"a.txt": b"x\n"}, "x", intent="key-1") == first
    assert fresh.find_intent("main", "absent") is None
    assert git_server.log("notes") == ["same content", "one"]


def test_what_a_stopped_attempt_left_behind_is_not_committed(
    notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    client.commit("main", {"a.txt": b"a\n"}, "base", intent="k0")
    work = tmp_path / "work"
    (work / "stray.txt").write_text("staged by an attempt that was killed\n")
    (work / "a.txt").write_text("changed by it too\n")
    subprocess.run(["git", "-C", str(work), "add", "stray.txt", "a.txt"], check=True,
                   env=git_env(tmp_path))
    made = client.commit("main", {"b.txt": b"b\n"}, "add b", intent="k1")
    tree = subprocess.run(["git", "-C", str(work), "ls-tree", "--name-only", made.sha],
                          check=True, capture_output=True, text=True, env=git_env(tmp_path))
    assert tree.stdout.split() == ["a.txt", "b.txt"]
    assert (work / "a.txt").read_bytes() == b"a\n"
    with pytest.raises(GitFailed, match="spaces around it"):
        client.commit("main", {"b.txt": b"b\n"}, "m", intent=" k1")


def test_push_twice_is_a_no_op_success(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    client.commit("main", {"a.txt": b"a\n"}, "a", intent="k")
    assert client.push("main") is True
    assert client.push("main") is False
    assert git_server.log("notes") == ["a"]


def test_a_non_fast_forward_push_is_refused_and_nothing_is_forced(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    ada = _client(notes, tmp_path, "ada")
    ada.commit("main", {"a.txt": b"a\n"}, "base", intent="k0")
    ada.push("main")
    bob = _client(notes, tmp_path, "bob")
    assert (tmp_path / "bob" / "a.txt").read_bytes() == b"a\n"  # a clone checks out main
    ada.commit("main", {"a.txt": b"ada\n"}, "ada's change", intent="k1")
    ada.push("main")

    bob.commit("main", {"b.txt": b"bob\n"}, "bob's change", intent="k2")
    with pytest.raises(GitFailed, match="non-fast-forward") as refused:
        bob.push("main")
    assert refused.value.kind == "deterministic"
    assert git_server.log("notes") == ["ada's change", "base"]

    # fetch brings ada's commit in as origin/main
    bob.fetch()
    assert [c.message.splitlines()[0] for c in bob.log("origin/main")] == ["ada's change", "base"]


def test_branches_tags_and_the_ref_cursor(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    base = client.commit("main", {"a.txt": b"a\n"}, "base", intent="k0")
    client.push("main")
    cursor = ls_remote(notes, home=tmp_path)
    assert cursor == {"refs/heads/main": base.sha}

    feature = client.commit("feature/x", {"b.txt": b"b\n"}, "feature", intent="k1")
    assert [c.sha for c in client.log("feature/x")] == [feature.sha, base.sha]
    assert client.push("feature/x") is True
    assert client.tag("v1", "main") == base.sha
    assert client.tag("v1", "main") == base.sha  # the same commit again: nothing to do
    with pytest.raises(GitFailed, match="already marks another commit"):
        client.tag("v1", "feature/x")
    assert client.push_tag("v1") is True
    assert client.push_tag("v1") is False
    client.tag("v2", "feature/x", message="the second release")

    now = ls_remote(notes, home=tmp_path)
    assert now == {"refs/heads/main": base.sha, "refs/heads/feature/x": feature.sha,
                   "refs/tags/v1": base.sha}
    assert changed_refs(cursor, now) == [
        RefChange("refs/heads/feature/x", None, feature.sha),
        RefChange("refs/tags/v1", None, base.sha),
    ]
    assert changed_refs(now, now) == []
    assert changed_refs(now, cursor)[0] == RefChange("refs/heads/feature/x", feature.sha, None)
    assert [c.ref for c in changed_refs(None, cursor)] == ["refs/heads/main"]

    # back on main, the feature's file is not there
    client.checkout("main")
    assert not (tmp_path / "work" / "b.txt").exists()


def test_revert_undoes_a_commit_once(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    client.commit("main", {"a.txt": b"a\n"}, "base", intent="k0")
    added = client.commit("main", {"b.txt": b"b\n"}, "add b", intent="k1")
    reverted = client.revert("main", added.sha, intent="undo-k1")
    assert not (tmp_path / "work" / "b.txt").exists()
    assert reverted.message.startswith('Revert "add b"')
    assert added.sha in reverted.message
    assert reverted.trailer(INTENT_TRAILER) == "undo-k1"
    assert client.revert("main", added.sha, intent="undo-k1") == reverted
    client.push("main")
    assert git_server.log("notes") == ['Revert "add b"', "add b", "base"]

    with pytest.raises(GitFailed, match="not a commit id"):
        client.revert("main", "--hard", intent="x")
    with pytest.raises(GitFailed, match="is not on main"):
        client.revert("main", "0" * 40, intent="x")


def test_a_revert_that_conflicts_is_abandoned_and_refused(notes: str, tmp_path: Path) -> None:
    client = _client(notes, tmp_path)
    client.commit("main", {"a.txt": b"1\n"}, "one", intent="k1")
    two = client.commit("main", {"a.txt": b"2\n"}, "two", intent="k2")
    three = client.commit("main", {"a.txt": b"3\n"}, "three", intent="k3")
    with pytest.raises(GitFailed, match="conflicts with later changes") as refused:
        client.revert("main", two.sha, intent="undo-k2")
    assert refused.value.kind == "deterministic"
    assert client.log("main")[0] == three
    assert (tmp_path / "work" / "a.txt").read_bytes() == b"3\n"
    status = subprocess.run(["git", "-C", str(tmp_path / "work"), "status", "--porcelain"],
                            check=True, capture_output=True, text=True, env=git_env(tmp_path))
    assert status.stdout == ""


def test_a_server_that_went_down_is_transient_for_fetch_and_push(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    client = _client(notes, tmp_path)
    client.commit("main", {"a.txt": b"a\n"}, "a", intent="k")
    git_server.stop()
    with pytest.raises(TransientError, match="the server cannot be reached"):
        client.fetch()
    with pytest.raises(TransientError, match="the server cannot be reached"):
        client.push("main")


def test_a_path_escaping_the_workdir_is_refused(notes: str, tmp_path: Path) -> None:
    client = _client(notes, tmp_path)
    for path in ("../outside.txt", "a/../../outside.txt", "/etc/passwd", ".git/config",
                 "sub/.GIT/hooks/pre-commit", "-rf", ""):
        with pytest.raises(GitFailed) as refused:
            client.commit("main", {path: b"x"}, "bad", intent="k")
        assert refused.value.kind == "deterministic"
    (tmp_path / "work" / "link").symlink_to(tmp_path)
    with pytest.raises(GitFailed, match="leads out of the repository"):
        client.commit("main", {"link/outside.txt": b"x"}, "bad", intent="k")
    assert not (tmp_path / "outside.txt").exists()
    assert client.log("main") == []


def test_a_ref_or_url_starting_with_a_dash_is_refused(notes: str, tmp_path: Path) -> None:
    client = _client(notes, tmp_path)
    client.commit("main", {"a.txt": b"a\n"}, "base", intent="k0")
    for call in (
        lambda: client.checkout("--orphan=x"),
        lambda: client.push("--force"),
        lambda: client.tag("-d"),
        lambda: client.tag("v1", "--all"),
        lambda: client.log("--all"),
        lambda: client.commit("-b", {"a.txt": b"x"}, "m", intent="k"),
    ):
        with pytest.raises(GitFailed, match="starts with '-'"):
            call()
    with pytest.raises(GitFailed, match="yet: clone it first"):
        GitClient(notes, tmp_path / "never-cloned", author=ADA).log("main")
    with pytest.raises(GitFailed, match="not a valid branch name"):
        client.checkout("a..b")
    marker = tmp_path / "pwned"
    with pytest.raises(GitFailed, match="starts with '-'"):
        GitClient(f"--upload-pack=touch {marker}", tmp_path / "x", author=ADA)
    with pytest.raises(GitFailed, match="starts with '-'"):
        ls_remote(f"--upload-pack=touch {marker}", home=tmp_path)
    assert not marker.exists()


def test_an_unknown_repository_is_deterministic(
    git_server: GitTestServer, tmp_path: Path
) -> None:
    with pytest.raises(GitFailed) as unknown:
        _client(git_server.url("absent"), tmp_path)
    assert unknown.value.kind == "deterministic"
    assert str(unknown.value) == (
        f"cannot clone {git_server.url('absent')}: the repository does not exist "
        "(no such repository: /absent.git)")
    with pytest.raises(GitFailed, match="does not exist"):
        ls_remote(git_server.url("absent"), home=tmp_path)


def test_a_port_nothing_listens_on_is_transient(tmp_path: Path) -> None:
    url = f"git://{HOST}:{free_port()}/notes.git"
    with pytest.raises(TransientError, match="the server cannot be reached") as down:
        _client(url, tmp_path)
    assert down.value.kind == "transient"
    with pytest.raises(TransientError):
        ls_remote(url, home=tmp_path)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_never_answers_times_out_as_transient(
    silent_server: int, tmp_path: Path
) -> None:
    url = f"git://{HOST}:{silent_server}/notes.git"
    with pytest.raises(TransientError, match="did not finish within 1 s"):
        ls_remote(url, home=tmp_path, timeout=1)
    client = GitClient(url, tmp_path / "work", author=ADA, timeout=1)
    with pytest.raises(TransientError):
        client.clone()


def _processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\x00", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if text in argv:
            found.append(argv)
    return found


def test_a_timeout_kills_git_and_the_helpers_it_started(
    silent_server: int, tmp_path: Path
) -> None:
    # Over HTTP, git runs git-remote-http as a child: both must go.
    url = f"http://{HOST}:{silent_server}/notes.git"
    with pytest.raises(TransientError, match="did not finish within 1 s"):
        ls_remote(url, home=tmp_path, timeout=1)
    assert _processes_naming(f"{HOST}:{silent_server}/notes.git") == []


def test_no_config_of_the_machine_or_home_is_read(
    git_server: GitTestServer, notes: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were either file read, every URL would be rewritten to a host that does not exist.
    rewrite = f'[url "git://nowhere.invalid/"]\n\tinsteadOf = git://{HOST}\n'
    (tmp_path / ".gitconfig").write_text(rewrite)
    (tmp_path / "system.gitconfig").write_text(rewrite)
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "system.gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / ".gitconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    client = GitClient(notes, tmp_path / "work", author=ADA, home=tmp_path, timeout=30)
    client.clone()
    client.commit("main", {"a.txt": b"a\n"}, "a", intent="k")
    assert client.push("main") is True
    assert ls_remote(notes, home=tmp_path) != {}


@pytest.fixture
def git_http() -> Iterator[GitHTTPServer]:
    with GitHTTPServer(user="ada", password="s3cret-Pa55") as server:
        yield server


def test_credentials_reach_an_http_server_and_a_wrong_password_is_refused(
    git_http: GitHTTPServer, tmp_path: Path
) -> None:
    url = git_http.create_repository("notes")
    client = GitClient(url, tmp_path / "work", author=ADA, username="ada",
                       password=git_http.password, timeout=30)
    client.clone()
    made = client.commit("main", {"a.txt": b"a\n"}, "over http", intent="k")
    assert client.push("main") is True
    assert client.push("main") is False
    assert ls_remote(url, home=tmp_path, username="ada",
                     password=git_http.password) == {"refs/heads/main": made.sha}
    # the password went through the environment, not the clone's config
    assert git_http.password not in (tmp_path / "work" / ".git" / "config").read_text()

    wrong = "wrong-Pa55"
    bad = GitClient(url, tmp_path / "bad", author=ADA, username="ada", password=wrong,
                    timeout=30)
    with pytest.raises(GitFailed, match="authentication failed") as refused:
        bad.clone()
    assert wrong not in str(refused.value)
    assert refused.value.kind == "deterministic"

    in_url = url.replace("http://", f"http://ada:{wrong}@")
    with pytest.raises(GitFailed, match="authentication failed") as shown:
        ls_remote(in_url, home=tmp_path)
    assert wrong not in str(shown.value) and "ada:***@" in str(shown.value)

    with pytest.raises(DeterministicError, match="authentication failed"):
        ls_remote(url, home=tmp_path)  # no credentials, and no prompt for them


def test_a_log_record_that_does_not_map_is_an_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="Commit: date") as bad:
        _commit_of("a" * 40 + "\x1fAda\x1fada@example.test\x1fyesterday\x1fmessage")
    assert bad.value.kind == "deterministic"


def test_the_workdir_is_found_again_and_fetched(
    git_server: GitTestServer, notes: str, tmp_path: Path
) -> None:
    ada = _client(notes, tmp_path, "ada")
    ada.commit("main", {"a.txt": b"a\n"}, "base", intent="k0")
    ada.push("main")
    again = _client(notes, tmp_path, "ada")  # clone() on an existing clone fetches
    assert [c.message.splitlines()[0] for c in again.log("origin/main")] == ["base"]
    env = git_env(tmp_path)
    out = subprocess.run(["git", "-C", str(tmp_path / "ada"), "config", "--get",
                          "remote.origin.url"], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert out.strip() == notes
