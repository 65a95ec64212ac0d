"""A connector's ``secret:NAME`` must be set before a deploy, on SQLite and PostgreSQL.

Opening the workspace cannot know it (the secrets are in the database), so ``deploy``
checks each reference against the secret store: a missing one is a sentence naming the
connector's table, the key and the line, listed with the definitions' own problems, and
a refused deploy writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import DefinitionError
from soloist.workspace import Workspace

PLAIN = """
name: plain
steps:
  - {id: a, tool: note, args: {text: "hello"}}
"""

# write_workspace puts [workspace] on lines 1-2: [connectors.mail] is line 3
CONNECTORS = '''[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
username = "ada"
password = "secret:MAIL_PASSWORD"
from_address = "ada@example.com"

[connectors.stripe]
kind = "billing"
api_key = "secret:STRIPE_KEY"
webhook_secret = "secret:STRIPE_HOOK"
currency = "eur"

[connectors.site]
kind = "git"
remote = "/srv/git/site.git"
author_name = "Ada"
author_email = "ada@example.com"
'''


def _missing(name: str, key: str, secret: str, line: int) -> str:
    return (f"soloist.toml:{line}: [connectors.{name}] {key} refers to secret {secret}, "
            f"which is not set; `soloist secret set {secret}`")


def test_a_deploy_is_refused_until_every_referenced_secret_is_set(tmp_path: Path,
                                                                  db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN}, toml=CONNECTORS)
    with Workspace(root, database_url=db_url) as ws:
        events = len(ws.log(limit=1000))
        with pytest.raises(DefinitionError) as refused:
            ws.deploy("person:test")
        assert refused.value.problems == [
            _missing("mail", "password", "MAIL_PASSWORD", 7),
            _missing("stripe", "api_key", "STRIPE_KEY", 12),
            _missing("stripe", "webhook_secret", "STRIPE_HOOK", 13)]
        assert ws.definitions() == [] and len(ws.log(limit=1000)) == events

        ws.secrets.set("MAIL_PASSWORD", "mail-password-1", "person:test")
        ws.secrets.set("STRIPE_KEY", "sk_test_123456", "person:test")
        with pytest.raises(DefinitionError) as refused:
            ws.deploy("person:test")
        assert refused.value.problems == [_missing("stripe", "webhook_secret",
                                                   "STRIPE_HOOK", 13)]

        ws.secrets.set("STRIPE_HOOK", "whsec_123456", "person:test")
        assert ("playbook", "plain", 1) in ws.deploy("person:test").deployed

        ws.secrets.delete("MAIL_PASSWORD", "person:test")
        with pytest.raises(DefinitionError) as refused:
            ws.deploy("person:test")
        assert refused.value.problems == [_missing("mail", "password", "MAIL_PASSWORD", 7)]


def test_a_missing_secret_is_listed_with_the_definitions_problems(tmp_path: Path,
                                                                  db_url: str) -> None:
    broken = PLAIN.replace("tool: note", "tool: nope")
    root = write_workspace(tmp_path / "ws", {"plain": broken},
                           toml='[connectors.hooks]\nkind = "webhook"\nsecret = "secret:HOOK"\n')
    with Workspace(root, database_url=db_url) as ws:
        with pytest.raises(DefinitionError) as refused:
            ws.deploy("person:test")
        problems = refused.value.problems
        assert problems[0] == _missing("hooks", "secret", "HOOK", 5)
        assert len(problems) == 2 and problems[1].startswith("playbooks/plain.yaml:")
        assert "no tool named 'nope'" in problems[1]
        assert ws.definitions() == []


def test_a_workspace_without_connectors_deploys_as_before(tmp_path: Path,
                                                                        db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN})
    with Workspace(root, database_url=db_url) as ws:
        assert ("playbook", "plain", 1) in ws.deploy("person:test").deployed
