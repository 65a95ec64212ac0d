"""The demo's git server: ``git daemon`` over bare repositories, with push enabled.

The repositories live under ``<folder>/repos`` and are served over ``git://`` with
``--export-all --enable=receive-pack``: anyone on 127.0.0.1 may clone and push (the git
protocol has no authentication). What was pushed is read straight from the bare
repository, so a count does not trust any client.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NamedTuple

from soloist.demo.processes import ProcessServer

__all__ = ["CommitEntry", "GitServer", "git_env"]

#: the trailer a Soloist commit carries its intent's key in (the README's git connector)
INTENT_TRAILER = "Soloist-Intent"


def git_env(home: Path, name: str = "Soloist Demo",
            mail: str = "demo@example.test") -> dict[str, str]:
    """An environment for ``git`` commands that ignores the user's and system's config."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=mail,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=mail,
        GIT_TERMINAL_PROMPT="0",
    )
    return env


class CommitEntry(NamedTuple):
    """One commit of a bare repository: its subject and trailers (in order)."""

    sha: str
    subject: str
    trailers: tuple[tuple[str, str], ...]

    @property
    def intent(self) -> str | None:
        """The last ``Soloist-Intent`` trailer's value, or ``None``."""
        values = [value for key, value in self.trailers if key.lower() == INTENT_TRAILER.lower()]
        return values[-1] if values else None


class GitServer(ProcessServer):
    """``git daemon`` over bare repositories in ``<folder>/repos``, on ``127.0.0.1``."""

    name = "git (git daemon)"
    prefix = "soloist-git-"
    log_name = "daemon.log"

    @property
    def base(self) -> Path:
        return self.folder / "repos"

    def url(self, name: str) -> str:
        return f"git://{self.host}:{self.port}/{name}.git"

    def command(self) -> list[str]:
        self.base.mkdir(parents=True, exist_ok=True)
        return [
            "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
            "--informative-errors", f"--base-path={self.base}",
            f"--listen={self.host}", f"--port={self.port}", str(self.base),
        ]  # fmt: skip

    def environment(self) -> dict[str, str] | None:
        return git_env(self.folder)

    def create_repository(self, name: str, *, branch: str = "main") -> str:
        """A new empty bare repository ``<name>.git`` whose HEAD is ``branch`` (kept when
        it exists); its URL."""
        path = self.base / f"{name}.git"
        if not path.exists():
            self._git("init", "--bare", "--quiet", f"--initial-branch={branch}", str(path))
        return self.url(name)

    def log(self, name: str, branch: str = "main") -> list[str]:
        """The subjects of ``branch``'s commits in the bare repository, newest first."""
        return [commit.subject for commit in self.commits(name, branch)]

    def commits(self, name: str, branch: str = "main") -> list[CommitEntry]:
        """``branch``'s commits in the bare repository, newest first, with their trailers."""
        path = self.base / f"{name}.git"
        if not self._git("--git-dir", str(path), "for-each-ref", f"refs/heads/{branch}"):
            return []  # nothing pushed to it yet
        out = self._git("--git-dir", str(path), "log", "-z",
                        "--format=%H%x1f%s%x1f%(trailers:only,unfold)", branch)
        commits = []
        for record in filter(None, out.split("\0")):
            sha, subject, trailers = record.split("\x1f", 2)
            pairs = tuple((key.strip(), value.strip()) for key, _, value in
                          (line.partition(":") for line in trailers.splitlines() if line))
            commits.append(CommitEntry(sha, subject, pairs))
        return commits

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], check=True, capture_output=True, text=True,
                              env=git_env(self.folder))
        return done.stdout
