"""A git client over the ``git`` command line: one working copy of one remote repository.

:class:`GitClient` clones or fetches a remote into a workdir, checks out branches, commits
files, pushes, tags, reads the log as :class:`~soloist.integrations.entities.Commit`
entities and reverts. Every git call runs through :mod:`.command` (fixed argv, clean
environment, timeout); every value that comes from a user is checked before it reaches git:
a branch, tag or URL starting with ``-`` is refused (git would read it as an option), paths
are passed after ``--`` and must stay inside the workdir.

Exactly once: :meth:`GitClient.commit` records the intent's key as a ``Soloist-Intent: KEY``
trailer and first looks for a commit with that trailer on the branch, returning it instead
of committing twice; :meth:`GitClient.push` is idempotent by the remote ref (pushing what is
already there succeeds and changes nothing) and never forces, so a branch that moved on the
remote is a deterministic failure; :meth:`GitClient.revert` (the compensation) adds a commit
rather than rewriting history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from soloist.errors import GitFailed
from soloist.integrations.entities import Commit, load, trailers_of
from soloist.integrations.git.command import (
    environment,
    failure,
    redact,
    run,
    safe_value,
)

__all__ = ["INTENT_TRAILER", "Author", "GitClient"]

INTENT_TRAILER = "Soloist-Intent"
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")
# One commit per NUL (``-z``); fields by the unit separator, the free-text message last.
_FORMAT = "%H%x1f%an%x1f%ae%x1f%aI%x1f%B"


@dataclass(frozen=True)
class Author:
    """Who commits: recorded as both author and committer."""

    name: str
    email: str

    def __post_init__(self) -> None:
        for what, value in (("author name", self.name), ("author email", self.email)):
            if not value.strip() or re.search(r"[<>\x00-\x1f\x7f]", value):
                raise GitFailed(f"the {what} {value!r} is empty or holds '<', '>' or a line break")


class GitClient:
    """One working copy (``workdir``) of the repository at ``url``.

    ``username``/``password`` (already resolved from the secret store) are given to git
    through the environment for HTTP(S) remotes; ``home`` is git's ``HOME`` (by default the
    workdir's parent; no config is read from it); ``timeout`` bounds every git call.
    """

    def __init__(
        self,
        url: str,
        workdir: Path,
        *,
        author: Author,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        home: Path | None = None,
    ) -> None:
        self.url = safe_value("remote URL", url)
        self.workdir = Path(workdir).absolute()
        self.author = author
        self.timeout = timeout
        self._secrets = tuple(s for s in (password,) if s)
        self.remote = redact(url, self._secrets)  # the URL as messages may show it
        self._env = environment(
            home or self.workdir.parent,
            username=username if password is not None else None,
            password=password,
            extra={
                "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
                "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
            },
        )  # fmt: skip

    # -- plumbing -------------------------------------------------------------------------

    def _git(self, *args: str, what: str, input: bytes | None = None,
             check: bool = True, cwd: Path | None = None) -> str:
        if cwd is None:
            self._cloned()
        done = run(args, cwd=cwd or self.workdir, env=self._env, timeout=self.timeout,
                   what=what, input=input, secrets=self._secrets, check=check)
        return done.stdout if done.returncode == 0 else ""

    def _ok(self, *args: str) -> bool:
        self._cloned()
        done = run(args, cwd=self.workdir, env=self._env, timeout=self.timeout, what="check",
                   check=False)
        return done.returncode == 0

    def _cloned(self) -> None:
        if not (self.workdir / ".git").is_dir():
            raise GitFailed(f"{self.workdir} is not a clone of {self.remote} yet: clone it first")

    def check_branch(self, name: str) -> str:
        """``name`` when git takes it as a branch name, else :class:`GitFailed` saying why."""
        return self._branch(name)

    def check_tag(self, name: str) -> str:
        """``name`` when git takes it as a tag name, else :class:`GitFailed` saying why."""
        return self._tag(name)

    def _branch(self, name: str) -> str:
        safe_value("branch name", name)
        if not self._ok("check-ref-format", f"refs/heads/{name}"):
            raise GitFailed(f"{name!r} is not a valid branch name")
        return name

    def _tag(self, name: str) -> str:
        safe_value("tag name", name)
        if not self._ok("check-ref-format", f"refs/tags/{name}"):
            raise GitFailed(f"{name!r} is not a valid tag name")
        return name

    def _has(self, ref: str) -> bool:
        return self._ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    # -- clone, fetch, branches -------------------------------------------------------------

    def clone(self) -> None:
        """Clone the remote into the workdir, or fetch when it already holds a clone."""
        if (self.workdir / ".git").is_dir():
            self.fetch()
            return
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        self._git("clone", "--quiet", "--", self.url, str(self.workdir),
                  what=f"clone {self.remote}", cwd=self.workdir.parent)

    def fetch(self) -> None:
        """Bring the remote's branches and tags into ``origin/*`` and the local tags."""
        self._git("fetch", "--quiet", "--prune", "--tags", "origin", what=f"fetch {self.remote}")

    def checkout(self, branch: str) -> None:
        """Make ``branch`` the working branch: the local one, else one made from
        ``origin/BRANCH``, else a new branch from the current commit (or an unborn one in an
        empty repository).

        The workdir belongs to the client: changes an attempt left behind when it stopped
        halfway (files written, staged, never committed) are discarded, so they cannot slip
        into the next commit."""
        self._branch(branch)
        what = f"check out {branch}"
        if self._has(f"refs/heads/{branch}"):
            self._git("checkout", "--quiet", "--force", branch, "--", what=what)
        elif self._has(f"refs/remotes/origin/{branch}"):
            self._git("checkout", "--quiet", "--force", "-b", branch, "--track",
                      f"origin/{branch}", "--", what=what)
        elif self._has("HEAD"):
            self._git("checkout", "--quiet", "--force", "-b", branch, "--", what=what)
        else:
            self._git("symbolic-ref", "HEAD", f"refs/heads/{branch}", what=what)
            self._git("read-tree", "--empty", what=what)


    def resolve(self, ref: str) -> str | None:
        """The commit ``ref`` names (a branch, ``origin/BRANCH``, a tag, a sha), or ``None``."""
        safe_value("ref", ref)
        if not self._has(ref):
            return None
        return self._git("rev-parse", "--verify", f"{ref}^{{commit}}", what="read a ref").strip()

    def contains(self, ref: str, sha: str) -> bool:
        """Whether commit ``sha`` is ``ref`` or one of its ancestors."""
        safe_value("ref", ref)
        if not _HEX.fullmatch(sha) or not self._has(ref):
            return False
        return self._ok("merge-base", "--is-ancestor", sha, ref)

    def fast_forward(self, branch: str) -> None:
        """Check out ``branch`` and bring it up to ``origin/BRANCH`` when it is behind; a
        branch that has commits of its own (diverged) is left as it is, for push to refuse."""
        self.checkout(branch)
        remote = f"refs/remotes/origin/{branch}"
        if self._has(remote) and self._has("HEAD") and self._ok(
                "merge-base", "--is-ancestor", "HEAD", remote):
            self._git("merge", "--quiet", "--ff-only", "--no-verify", remote,
                      what=f"bring {branch} up to date")

    def create_branch(self, name: str, sha: str) -> bool:
        """Make the local branch ``name`` at commit ``sha``: ``True`` when it was made,
        ``False`` when it already held ``sha`` or a descendant of it; refused when it
        holds an unrelated commit."""
        self._branch(name)
        if not _HEX.fullmatch(sha):
            raise GitFailed(f"{sha!r} is not a commit id")
        ref = f"refs/heads/{name}"
        existing = self.resolve(ref)
        if existing is not None:
            if existing == sha or self.contains(ref, sha):
                return False
            raise GitFailed(f"the branch {name} already exists on another commit "
                            f"({existing[:12]})")
        # The empty old value: made only if nobody made it in between.
        self._git("update-ref", "--no-deref", ref, sha, "", what=f"create the branch {name}")
        return True

    # -- commits ---------------------------------------------------------------------------

    def find_intent(self, branch: str, key: str) -> Commit | None:
        """The newest commit on ``branch`` (local, or else ``origin/BRANCH``) whose
        ``Soloist-Intent`` trailer is ``key``, or ``None``."""
        self._branch(branch)
        _intent_key(key)
        for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
            if not self._has(ref):
                continue
            for commit in self._log(ref, "--fixed-strings", f"--grep={key}"):
                if commit.trailer(INTENT_TRAILER) == key:
                    return commit
        return None

    def commit(self, branch: str, files: Mapping[str, bytes], message: str, *,
               intent: str) -> Commit:
        """Write ``files`` (relative path -> content) on ``branch`` and commit them with a
        ``Soloist-Intent: INTENT`` trailer; the existing commit when one already carries it.

        A commit is made even when the files already hold that content, so the intent
        always has its commit to be found by."""
        _intent_key(intent)
        if not message.strip():
            raise GitFailed("the commit message is empty")
        if not files:
            raise GitFailed("there are no files to commit")
        paths = [_relative(path) for path in files]
        self.checkout(branch)
        found = self.find_intent(branch, intent)
        if found is not None:
            return found
        # Checked again on the branch's own tree: a symbolic link in it could lead out.
        targets = [_inside(self.workdir, path) for path in paths]
        for target, content in zip(targets, files.values(), strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        self._git("add", "--", *paths, what=f"stage files on {branch}")
        return self._commit(branch, message, intent)

    def _commit(self, branch: str, message: str, intent: str) -> Commit:
        self._git("commit", "--quiet", "--allow-empty", "--no-verify", "--cleanup=whitespace",
                  f"--message={message}", f"--trailer={INTENT_TRAILER}: {intent}",
                  what=f"commit on {branch}")
        [made] = self._log("HEAD", "--max-count=1")
        return made

    def revert(self, branch: str, sha: str, *, intent: str) -> Commit:
        """Undo commit ``sha`` on ``branch`` with a new commit carrying ``intent`` (the
        existing one when already done); a revert that conflicts is abandoned and refused."""
        _intent_key(intent)
        if not _HEX.fullmatch(sha):
            raise GitFailed(f"{sha!r} is not a commit id")
        self.checkout(branch)
        found = self.find_intent(branch, intent)
        if found is not None:
            return found
        if not self._ok("merge-base", "--is-ancestor", sha, "HEAD"):
            raise GitFailed(f"cannot revert {sha[:12]}: it is not on {branch}")
        [target] = self._log(sha, "--max-count=1")
        done = run(("revert", "--no-commit", "--no-edit", target.sha), cwd=self.workdir,
                   env=self._env, timeout=self.timeout, what=f"revert {sha[:12]}", check=False)
        if done.returncode != 0:
            run(("revert", "--abort"), cwd=self.workdir, env=self._env, timeout=self.timeout,
                what="abandon the revert", check=False)
            raise GitFailed(f"cannot revert {target.sha[:12]} on {branch}: "
                            "it conflicts with later changes")
        subject = target.message.splitlines()[0] if target.message else target.sha[:12]
        message = f'Revert "{subject}"\n\nThis reverts commit {target.sha}.'
        return self._commit(branch, message, intent)

    # -- push and tags ---------------------------------------------------------------------

    def push(self, branch: str) -> bool:
        """Push ``branch`` to the remote's branch of that name, never forcing: ``True`` when
        the remote moved, ``False`` when it already held this commit."""
        self._branch(branch)
        ref = f"refs/heads/{branch}"
        return self._push(ref, what=f"push {branch} to {self.remote}")

    def tag(self, name: str, ref: str = "HEAD", *, message: str | None = None) -> str:
        """Tag ``ref`` as ``name`` (annotated when ``message`` is given); the tagged commit.
        Tagging the same commit again is a no-op; a tag of another commit is refused."""
        self._tag(name)
        safe_value("ref", ref)
        if not self._has(ref):
            raise GitFailed(f"cannot tag {ref!r}: there is no such commit")
        sha = self._git("rev-parse", "--verify", f"{ref}^{{commit}}", what="read a ref").strip()
        tagged = f"refs/tags/{name}"
        if self._has(tagged):
            existing = self._git("rev-parse", "--verify", f"{tagged}^{{commit}}",
                                 what="read a tag").strip()
            if existing != sha:
                raise GitFailed(f"the tag {name} already marks another commit ({existing[:12]})")
            return sha
        options = ["--annotate", f"--message={message}"] if message is not None else []
        self._git("tag", *options, "--", name, sha, what=f"tag {sha[:12]} as {name}")
        return sha

    def push_tag(self, name: str) -> bool:
        """Push tag ``name``: ``True`` when it was new on the remote, ``False`` when already
        there; a remote tag of that name on another commit is refused."""
        self._tag(name)
        return self._push(f"refs/tags/{name}", what=f"push tag {name} to {self.remote}")

    def _push(self, ref: str, *, what: str) -> bool:
        if not self._has(ref):
            raise GitFailed(f"cannot {what}: there is no {ref} here")
        done = run(("push", "--porcelain", "--no-verify", "origin", f"{ref}:{ref}"),
                   cwd=self.workdir, env=self._env, timeout=self.timeout, what=what,
                   secrets=self._secrets, check=False)
        for line in done.stdout.splitlines():
            flag, _, rest = line.partition("\t")
            if not rest.startswith(f"{ref}:"):
                continue
            if flag == "=":
                return False
            if flag in (" ", "*", "+"):
                return True
            if flag == "!":
                summary = rest.partition("\t")[2]
                if "fetch first" in summary or "non-fast-forward" in summary:
                    raise GitFailed(f"cannot {what}: the remote has commits this one does not "
                                    "(non-fast-forward); fetch and commit on top instead")
                if "already exists" in summary:
                    raise GitFailed(f"cannot {what}: the remote already has it on another commit")
                raise GitFailed(f"cannot {what}: the remote refused it ({summary})")
        # No status line: git failed before talking to the remote; say why.
        raise failure(what, done.stderr, self._secrets)

    # -- log --------------------------------------------------------------------------------

    def log(self, ref: str = "HEAD", *, limit: int = 100) -> list[Commit]:
        """The commits reachable from ``ref``, newest first, at most ``limit``."""
        safe_value("ref", ref)
        if not self._has(ref):
            return []
        return self._log(ref, f"--max-count={limit}")

    def between(self, old: str | Sequence[str] | None, new: str, *,
                limit: int = 100) -> list[Commit]:
        """The commits reachable from ``new`` but from none of ``old`` (one commit, several,
        or ``None``: all of ``new``'s), newest first, at most ``limit``; none when ``new``
        is not here. An ``old`` commit this clone does not have is left out."""
        olds = [] if old is None else [old] if isinstance(old, str) else list(old)
        for sha in (*olds, new):
            if not _HEX.fullmatch(sha):
                raise GitFailed(f"{sha!r} is not a commit id")
        if not self._has(new):
            return []
        known = [sha for sha in olds if self._has(sha)]
        return self._log(new, f"--max-count={limit}", *(f"^{sha}" for sha in known))

    def _log(self, ref: str, *options: str) -> list[Commit]:
        out = self._git("log", "-z", f"--format={_FORMAT}", *options, ref, "--",
                        what=f"read the log of {ref}")
        return [_commit_of(record) for record in out.split("\x00") if record]


def _commit_of(record: str) -> Commit:
    sha, author, email, date, message = record.split("\x1f", 4)
    message = message.strip("\n")
    return load(Commit, {"sha": sha, "author": author, "email": email, "date": date,
                         "message": message, "trailers": trailers_of(message)})


def _intent_key(key: str) -> str:
    # git trims a trailer's value: a key with spaces around it would never be found again.
    if not key.strip() or key != key.strip() or re.search(r"[\x00-\x1f\x7f]", key):
        raise GitFailed(f"the intent key {key!r} is empty, not one line or has spaces around it")
    return key


def _relative(path: str) -> str:
    """``path`` as a relative POSIX path, or :class:`GitFailed` when it is absolute, climbs
    out with ``..``, enters ``.git`` or starts with ``-``."""
    pure = PurePosixPath(path)
    if not path or "\\" in path or "\x00" in path or pure.is_absolute():
        raise GitFailed(f"the path {path!r} must be relative to the repository")
    if any(part == ".." for part in pure.parts):
        raise GitFailed(f"the path {path!r} leaves the repository ('..')")
    if any(part.lower() == ".git" for part in pure.parts):
        raise GitFailed(f"the path {path!r} is inside .git")
    if path.startswith("-"):
        raise GitFailed(f"the path {path!r} starts with '-'")
    return str(pure)


def _inside(workdir: Path, path: str) -> Path:
    """The file of relative ``path`` in ``workdir``, unless a symbolic link leads it out."""
    target = workdir.joinpath(*PurePosixPath(path).parts)
    root = workdir.resolve()
    resolved = target.resolve()
    if resolved == root or not resolved.is_relative_to(root) or (
            resolved.is_relative_to(root / ".git")):
        raise GitFailed(f"the path {path!r} leads out of the repository")
    return target
