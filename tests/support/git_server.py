"""A real git server (``git daemon``) on ``127.0.0.1``, for testing the git connector.

Bare repositories live under a temporary base folder and are served over the ``git://``
protocol with ``--export-all --enable=receive-pack`` (anyone may clone and push: the git
protocol has no authentication, which is what a local test needs).
:meth:`GitTestServer.create_repository` makes a bare repository and returns its URL;
:meth:`GitTestServer.log` reads a branch's history straight from the bare repository, so a
test can check what was pushed without trusting the client.

::

    with GitTestServer() as git:
        url = git.create_repository("notes")
        subprocess.run(["git", "clone", url, str(work)], check=True)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.netutil import ProcessServer

__all__ = ["GitTestServer", "git_env"]


def git_env(home: Path) -> dict[str, str]:
    """An environment for ``git`` commands that ignores the user's and system's config."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Soloist Test",
        GIT_AUTHOR_EMAIL="test@example.test",
        GIT_COMMITTER_NAME="Soloist Test",
        GIT_COMMITTER_EMAIL="test@example.test",
        GIT_TERMINAL_PROMPT="0",
    )
    return env


class GitTestServer(ProcessServer):
    """``git daemon`` over bare repositories in a temporary folder, on a free port."""

    prefix = "soloist-git-"
    log_name = "daemon.log"

    @property
    def base(self) -> Path:
        return self.folder / "repos"

    def url(self, name: str) -> str:
        return f"git://{self.host}:{self.port}/{name}.git"

    def command(self) -> list[str]:
        self.base.mkdir()
        return [
            "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
            "--informative-errors", f"--base-path={self.base}",
            f"--listen={self.host}", f"--port={self.port}", str(self.base),
        ]  # fmt: skip

    def environment(self) -> dict[str, str] | None:
        return git_env(self.folder)

    def create_repository(self, name: str, *, branch: str = "main") -> str:
        """A new empty bare repository ``<name>.git`` whose HEAD is ``branch``; its URL."""
        path = self.base / f"{name}.git"
        self._git("init", "--bare", "--quiet", f"--initial-branch={branch}", str(path))
        return self.url(name)

    def log(self, name: str, branch: str = "main") -> list[str]:
        """The subjects of ``branch``'s commits in the bare repository, newest first."""
        path = self.base / f"{name}.git"
        out = self._git("--git-dir", str(path), "log", "--format=%s", branch)
        return out.splitlines()

    def _git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args],
            check=True,
            capture_output=True,
            text=True,
            env=git_env(self.folder),
        )
        return done.stdout
