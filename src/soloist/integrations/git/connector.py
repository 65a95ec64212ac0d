"""The ``git`` connector: a remote repository's commits, branches and tags as tools, and
its refs as the ``git.pushed`` trigger.

For a connector named ``repo`` the tools are ``repo.commit`` (files and a message, then a
push), ``repo.revert`` (its compensation), ``repo.branch``, ``repo.push``, ``repo.tag``
(writes) and ``repo.log`` (a read). Each works one working copy, cloned on first use into
the connector's own folder under ``.soloist/connectors/NAME`` (or ``workdir``), and holds
a lock on it for the whole operation, so the threads and the worker processes of one host
never run git in it at the same time.

Exactly once: a commit carries its intent's key as a ``Soloist-Intent`` trailer and is
looked for on the branch (locally and on the remote) before anything is written, so a
retried step returns the commit it already made; a push of what the remote already has
changes nothing; nothing is ever force-pushed, so a branch that moved on the remote is a
deterministic failure that says so. A revert is a new commit, pushed.

The ``refs`` source polls ``git ls-remote``: the refs it sees the first time are where it
starts, and every ref created, moved or deleted after that is one ``git.pushed`` event
(delivery id ``REF@NEWSHA``) with the commits it brought, fetched into the working copy.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from soloist.config.connectors import GitConnector as GitSettings
from soloist.errors import GitFailed
from soloist.execution.context import ToolCall
from soloist.integrations.connector import Action, Connector, Context, Polled, Received
from soloist.integrations.git.client import Author, GitClient
from soloist.integrations.git.command import redact
from soloist.integrations.git.refs import RefChange, changed_refs, ls_remote

__all__ = ["GitConnector"]

#: how many commits one ``git.pushed`` event lists at most (a push of a long history)
EVENT_COMMITS = 100
_ZERO = "0" * 40
_SCP = re.compile(r"^[^/:]+:")  # user@host:path, git's short form of ssh://


class GitConnector(Connector):
    kind = "git"
    section: GitSettings

    def __init__(self, name: str, section: GitSettings, context: Context) -> None:
        super().__init__(name, section, context)
        self.section = section
        self._client: GitClient | None = None

    # -- the working copy ------------------------------------------------------------------

    @property
    def remote(self) -> str:
        """The remote as git is given it: a relative folder is the workspace's."""
        remote = self.section.remote
        if "://" in remote or _SCP.match(remote) or Path(remote).is_absolute():
            return remote
        return str((self.context.workspace / remote).absolute())

    @property
    def workdir(self) -> Path:
        if self.section.workdir is None:
            return self.context.folder / "work"
        return (self.context.workspace / self.section.workdir).absolute()

    def _credentials(self) -> tuple[str | None, str | None]:
        password = self.secret(self.section.password)
        if password is None:
            return None, None
        return self.section.username or "git", password

    @contextmanager
    def _working_copy(self) -> Iterator[GitClient]:
        """The clone, fetched, held by this thread and process alone until the block ends."""
        folder = self.context.folder
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "lock", "a+b") as lock:
            # flock is per open file: it excludes this process's other threads too.
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                client = self._client
                if client is None:
                    username, password = self._credentials()
                    client = GitClient(self.remote, self.workdir, author=Author(
                        self.section.author_name, self.section.author_email),
                        username=username, password=password, timeout=self.section.timeout,
                        home=folder)
                    self._client = client
                client.clone()  # or fetch, when the clone is there
                yield client
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _branch(self, branch: str | None) -> str:
        return self.section.branch if branch is None else branch

    def _on(self, client: GitClient, name: str) -> None:
        """Check out branch ``name`` up to date with the remote; a branch new to both
        starts from the connector's branch, not from whatever was checked out last."""
        base = self.section.branch
        if name != base and not any(client.resolve(ref) for ref in (
                f"refs/heads/{name}", f"refs/remotes/origin/{name}")):
            client.fast_forward(base)
        client.fast_forward(name)

    def _commit_of(self, client: GitClient, ref: str) -> str:
        """The commit ``ref`` names: ``HEAD`` is the connector's branch; a branch is this
        clone's own, else the remote's."""
        if ref == "HEAD":
            client.fast_forward(self.section.branch)
        for candidate in (ref, f"origin/{ref}"):
            sha = client.resolve(candidate)
            if sha is not None:
                return sha
        raise GitFailed(f"there is no commit {ref!r} in {client.remote}")

    # -- actions ---------------------------------------------------------------------------

    def actions(self) -> Sequence[Action]:
        return (
            Action("commit", self.commit, "write", idempotent=True,
                   compensate=("revert", {"sha": "{{ result.sha }}",
                                          "branch": "{{ result.branch }}"})),
            Action("revert", self.revert, "write", idempotent=True),
            Action("branch", self.branch, "write", idempotent=True),
            Action("push", self.push, "write", idempotent=True),
            Action("tag", self.tag, "write", idempotent=True),
            Action("log", self.log),
        )

    def commit(self, files: dict[str, str], message: str, call: ToolCall,
               branch: str | None = None, push: bool = True) -> dict[str, Any]:
        """Commit files (path -> text) on a branch and push it; a retry returns the same
        commit."""
        name = self._branch(branch)
        with self._working_copy() as client:
            self._on(client, name)
            replayed = client.find_intent(name, call.idempotency_key) is not None
            made = client.commit(name, {path: text.encode() for path, text in files.items()},
                                 message, intent=call.idempotency_key)
            if push:
                client.push(name)
        return {"sha": made.sha, "branch": name, "pushed": push, "replayed": replayed}

    def revert(self, sha: str, call: ToolCall, branch: str | None = None) -> dict[str, Any]:
        """Undo a commit with a new commit on its branch, pushed when the commit was."""
        name = self._branch(branch)
        with self._working_copy() as client:
            self._on(client, name)
            published = client.contains(f"refs/remotes/origin/{name}", sha)
            made = client.revert(name, sha, intent=call.idempotency_key)
            if published:
                client.push(name)
        return {"sha": made.sha, "reverted": sha, "branch": name, "pushed": published}

    def branch(self, name: str, call: ToolCall, from_ref: str = "HEAD") -> dict[str, Any]:
        """Create a branch at a ref and push it; nothing to do when it is already there."""
        with self._working_copy() as client:
            sha = self._commit_of(client, from_ref)
            client.check_branch(name)
            remote = f"refs/remotes/origin/{name}"
            there = client.resolve(remote)
            if there is not None:
                if not client.contains(remote, sha):
                    raise GitFailed(f"the branch {name} already exists on the remote on "
                                    f"another commit ({there[:12]})")
                return {"branch": name, "sha": there, "created": False}
            created = client.create_branch(name, sha)
            client.push(name)
            head = client.resolve(f"refs/heads/{name}")
        return {"branch": name, "sha": head, "created": created}

    def push(self, call: ToolCall, branch: str | None = None) -> dict[str, Any]:
        """Push a branch to the remote, never forcing."""
        name = self._branch(branch)
        with self._working_copy() as client:
            moved = client.push(name)
            sha = client.resolve(f"refs/heads/{name}")
        return {"branch": name, "sha": sha, "moved": moved}

    def tag(self, name: str, call: ToolCall, ref: str = "HEAD",
            message: str | None = None) -> dict[str, Any]:
        """Tag a commit (annotated with a message) and push the tag."""
        with self._working_copy() as client:
            client.check_tag(name)
            sha = client.tag(name, self._commit_of(client, ref), message=message)
            moved = client.push_tag(name)
        return {"tag": name, "sha": sha, "moved": moved}

    def log(self, ref: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The commits of a ref (the connector's branch by default), newest first."""
        if not 1 <= limit <= 1000:
            raise GitFailed(f"limit must be from 1 to 1000, not {limit}")
        with self._working_copy() as client:
            if ref is None:
                client.fast_forward(self.section.branch)
                ref = self.section.branch
            target = client.resolve(ref) or client.resolve(f"origin/{ref}")
            commits = [] if target is None else client.log(target, limit=limit)
        return [c.model_dump(mode="json") for c in commits]

    # -- the trigger and the round trip ----------------------------------------------------

    def sources(self) -> Sequence[RefsSource]:
        return (RefsSource(self),)

    def list_refs(self) -> dict[str, str]:
        username, password = self._credentials()
        self.context.folder.mkdir(parents=True, exist_ok=True)
        return ls_remote(self.remote, home=self.context.folder, username=username,
                         password=password, timeout=self.section.timeout)

    def commits_of(self, changes: Sequence[RefChange],
                   known: Mapping[str, str]) -> list[list[dict[str, Any]]]:
        """For each change, the commits it brought, fetched once: a moved ref's since its
        old commit, a new ref's that none of the ``known`` refs had; none for a deletion."""
        if all(change.new is None for change in changes):
            return [[] for _ in changes]
        out: list[list[dict[str, Any]]] = []
        with self._working_copy() as client:
            for change in changes:
                if change.new is None:
                    out.append([])
                    continue
                old = change.old if change.old is not None else sorted(set(known.values()))
                commits = client.between(old, change.new, limit=EVENT_COMMITS)
                out.append([c.model_dump(mode="json") for c in commits])
        return out

    def test(self) -> str:
        refs = self.list_refs()
        heads = sum(1 for ref in refs if ref.startswith("refs/heads/"))
        return (f"listed the refs of {redact(self.remote)}: {heads} branch(es) and "
                f"{len(refs) - heads} tag(s)")


class RefsSource:
    """The remote's refs, by a ``{ref: sha}`` cursor: each change is a ``git.pushed``."""

    id = "refs"

    def __init__(self, connector: GitConnector) -> None:
        self.connector = connector

    @property
    def interval(self) -> float:
        return float(self.connector.section.poll_interval)

    def poll(self, cursor: Any, limit: int) -> Polled:
        current = self.connector.list_refs()
        if cursor is None:  # the first look: what is there already is where it starts
            return Polled([], cursor=current)
        before = {str(k): str(v) for k, v in cast(dict[str, Any], cursor).items()}
        changes = changed_refs(before, current)
        events: list[Received] = []
        state = dict(before)
        taken = changes[:limit]
        brought = self.connector.commits_of(taken, before)
        for change, commits in zip(taken, brought, strict=True):
            if change.new is None:
                state.pop(change.ref, None)
            else:
                state[change.ref] = change.new
            events.append(Received(
                delivery_id=f"{change.ref}@{change.new or _ZERO}", topic="git.pushed",
                payload={"connector": self.connector.name, "ref": change.ref,
                         "old": change.old, "new": change.new, "commits": commits},
                cursor=dict(state)))
        more = len(changes) > limit
        return Polled(events, cursor=dict(state) if more else current, more=more)
