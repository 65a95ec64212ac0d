"""A real git server (``git daemon``) on ``127.0.0.1``, for testing the git connector.

The demo's :class:`~soloist.demo.repositories.GitServer` with its bare repositories in a
temporary folder, served over the ``git://`` protocol with ``--export-all
--enable=receive-pack`` (anyone may clone and push: the git protocol has no
authentication, which is what a local test needs).
:meth:`GitTestServer.create_repository` makes a bare repository and returns its URL;
:meth:`GitTestServer.log` reads a branch's history straight from the bare repository, so a
test can check what was pushed without trusting the client.

::

    with GitTestServer() as git:
        url = git.create_repository("notes")
        subprocess.run(["git", "clone", url, str(work)], check=True)
"""

from __future__ import annotations

from pathlib import Path

from soloist.demo import repositories
from soloist.demo.repositories import GitServer

__all__ = ["GitTestServer", "git_env"]


def git_env(home: Path) -> dict[str, str]:
    """An environment for ``git`` commands that ignores the user's and system's config."""
    return repositories.git_env(home, "Soloist Test", "test@example.test")


class GitTestServer(GitServer):
    """``git daemon`` over bare repositories in a temporary folder, on a free port."""
