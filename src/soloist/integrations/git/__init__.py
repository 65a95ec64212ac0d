"""Git repositories through the ``git`` command line (never GitPython, which leaks
resources in long-running processes and keeps needing argument-injection fixes).

:class:`GitClient` (:mod:`.client`) works one clone of a remote: clone/fetch, branches,
commits carrying a ``Soloist-Intent: KEY`` trailer and found again by it (so a retried
commit is not made twice), push that never forces and is a no-op when the remote already
has the commit, tags, the log as :class:`~soloist.integrations.entities.Commit` entities,
and revert as the compensation. :func:`ls_remote` and :func:`changed_refs` (:mod:`.refs`)
give the ``{ref: sha}`` cursor the ``git.pushed`` trigger polls with.

Every call is plain parameters in (URL, workdir, author, an already resolved password, a
timeout) and entities or Soloist errors out: :mod:`.command` runs git with a clean
environment and a timeout, and turns a failure into one sentence with the right kind
(unreachable or timed out: transient; unknown repository, refused credentials or a refused
push: deterministic), with passwords redacted.
"""

from soloist.integrations.git.client import INTENT_TRAILER, Author, GitClient
from soloist.integrations.git.refs import RefChange, changed_refs, ls_remote

__all__ = [
    "INTENT_TRAILER",
    "Author",
    "GitClient",
    "RefChange",
    "changed_refs",
    "ls_remote",
]
