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
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from support.netutil import HOST, free_port, stop_process, wait_for_port

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


class GitTestServer:
    """``git daemon`` over bare repositories in a temporary folder, on a free port."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self.base: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def url(self, name: str) -> str:
        return f"git://{self.host}:{self.port}/{name}.git"

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="soloist-git-")
        root = Path(self._tmp.name)
        self.base = root / "repos"
        self.base.mkdir()
        log = root / "daemon.log"
        self.port = free_port()
        command = [
            "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
            "--informative-errors", f"--base-path={self.base}",
            f"--listen={self.host}", f"--port={self.port}", str(self.base),
        ]  # fmt: skip
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=git_env(root),
            )
        try:
            wait_for_port(self.port, process=self._process, log=log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.base = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def create_repository(self, name: str, *, branch: str = "main") -> str:
        """A new empty bare repository ``<name>.git`` whose HEAD is ``branch``; its URL."""
        assert self.base is not None, "start the server first"
        path = self.base / f"{name}.git"
        self._git("init", "--bare", "--quiet", f"--initial-branch={branch}", str(path))
        return self.url(name)

    def log(self, name: str, branch: str = "main") -> list[str]:
        """The subjects of ``branch``'s commits in the bare repository, newest first."""
        assert self.base is not None, "start the server first"
        path = self.base / f"{name}.git"
        out = self._git("--git-dir", str(path), "log", "--format=%s", branch)
        return out.splitlines()

    def _git(self, *args: str) -> str:
        assert self._tmp is not None
        done = subprocess.run(
            ["git", *args],
            check=True,
            capture_output=True,
            text=True,
            env=git_env(Path(self._tmp.name)),
        )
        return done.stdout
