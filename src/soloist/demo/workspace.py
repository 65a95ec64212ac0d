"""The freelancer workspace of the demo: the template, pointed at the local servers.

``soloist init --template freelancer`` writes connectors aimed at fixed local ports; the
demo's servers listen where the kernel put them, so the connector lines are rewritten to
those, the workspace is made a rehearsal (its clock may move), the credentials are stored
as secrets, three leads are written to ``leads.csv`` and the client repository gets its
first commit.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from soloist.demo.repositories import git_env
from soloist.demo.servers import LocalServers
from soloist.errors import InvalidState
from soloist.interfaces.cli.scaffold import write_example
from soloist.workspace import Workspace

REPOSITORY = "clients"
STUDIO = "mara@lind.studio.test"
CALENDAR_USER = "mara"

LEADS = """\
name,email,company,interest,hook
Ada Quinn,ada@northwind.test,Northwind Outfitters,checkout,I loved the new spring catalogue.
Ben Ortiz,ben@fernhill.test,Fernhill Clinics,design system,
Cleo Park,cleo@brightpath.test,Brightpath,onboarding,I have designed banking apps for ten years.
"""


def check_folder(root: Path) -> None:
    """A new or empty folder: the demo's story starts from nothing (an earlier demo's
    memory would remember Ben's opt-out), and it never writes over a workspace."""
    if root.exists() and not root.is_dir():
        raise InvalidState(f"{root} is a file; give the demo a new folder")
    if root.is_dir() and any(root.iterdir()):
        raise InvalidState(f"{root} has files; give the demo a new folder (or none: it "
                           "makes one)")


def servers_for(root: Path) -> LocalServers:
    """The demo's servers, their data under the workspace's ``.servers/``."""
    return LocalServers(root / ".servers", mailbox=STUDIO, calendar_user=CALENDAR_USER)


def write_workspace(root: Path, servers: LocalServers) -> Path:
    """The freelancer template in ``root``, its connectors on ``servers``."""
    write_example(root, force=True, template="freelancer")
    config = root / "soloist.toml"
    text = config.read_text()
    for old, new in (
        ("# test_clock = true", "test_clock = true"),
        ("smtp_port = 2525", f"smtp_port = {servers.smtp.port}"),
        ("imap_port = 1143", f"imap_port = {servers.imap.port}"),
        ('url = "http://127.0.0.1:5232/"', f'url = "{servers.caldav.url}"'),
        ('base_url = "http://127.0.0.1:8420"', f'base_url = "{servers.stripe.base_url}"'),
        ('remote = "git://127.0.0.1:9418/clients.git"',
         f'remote = "{servers.git.url(REPOSITORY)}"'),
        ('poll_interval = "30s"', 'poll_interval = "1s"'),
    ):
        if old not in text:
            raise InvalidState(f"the freelancer template's soloist.toml has no {old!r}; "
                               "the demo cannot point it at its servers")
        text = text.replace(old, new, 1)
    config.write_text(text)
    (root / "leads.csv").write_text(LEADS)
    _seed_repository(servers)
    return root


def store_secrets(ws: Workspace, servers: LocalServers, actor: str) -> None:
    ws.secrets.set("MAIL_PASSWORD", servers.smtp.password, actor)
    ws.secrets.set("CALDAV_PASSWORD", servers.caldav.password, actor)
    ws.secrets.set("STRIPE_KEY", servers.stripe.api_key, actor)


def _seed_repository(servers: LocalServers) -> None:
    """The client repository, with a first commit on main for client branches to start
    from (kept as it is when the demo runs again on the same folder)."""
    url = servers.create_repository(REPOSITORY)
    if servers.commits(REPOSITORY):
        return
    with tempfile.TemporaryDirectory(prefix="soloist-demo-git-") as tmp:
        work = Path(tmp) / "work"
        env = git_env(Path(tmp), name="Mara Lind", mail=STUDIO)

        def git(*args: str) -> None:
            subprocess.run(["git", *args], cwd=work if work.exists() else tmp, env=env,
                           check=True, capture_output=True, text=True)

        git("clone", "--quiet", url, str(work))
        (work / "README.md").write_text("# Lind Studio: client work\n\nOne branch a client "
                                        "(client/<name>), one folder a milestone.\n")
        git("add", "README.md")
        git("commit", "--quiet", "-m", "Client work of Lind Studio")
        git("push", "--quiet", "origin", "HEAD:main")
