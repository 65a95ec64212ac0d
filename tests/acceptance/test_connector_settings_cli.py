"""``[connectors.NAME]`` through the real ``soloist`` binary: a bad table stops any command
at open with one sentence and exit code 1; a secret a connector refers to stops ``deploy``
until ``soloist secret set`` stores it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

PLAIN = """
name: plain
steps:
  - {id: a, tool: note, args: {text: "hello"}}
"""

# write_workspace puts [workspace] on lines 1-2: the connector's table is line 3
MAIL = '''[connectors.mail]
kind = "email"
smtp_host = "127.0.0.1"
username = "ada"
password = "secret:MAIL_PASSWORD"
from_address = "ada@example.com"
'''


@pytest.mark.parametrize(("toml", "sentence"), [
    ('[connectors.mail]\nkind = "fax"\n',
     'soloist.toml:4: [connectors.mail] kind must be one of email, calendar, billing, git, '
     'webhook, not "fax"'),
    (MAIL.replace('"secret:MAIL_PASSWORD"', '"hunter2-hunter2"'),
     'soloist.toml:7: [connectors.mail] password: a credential is not written in '
     'soloist.toml; store it with `soloist secret set NAME` and write password = '
     '"secret:NAME"'),
    (MAIL.replace('"127.0.0.1"', '"smtp://127.0.0.1:25"'),
     "soloist.toml:5: [connectors.mail] smtp_host: 'smtp://127.0.0.1:25' must be a host "
     "name such as mail.example.com or 127.0.0.1, without a scheme or a path"),
    (MAIL + 'url = "https://dav.example.com/"\n',
     "soloist.toml:9: unknown key url in [connectors.mail] (kind email); url is a setting "
     "of kind calendar or webhook"),
])
def test_a_bad_connector_table_stops_a_command_at_open(tmp_path: Path, toml: str,
                                                       sentence: str) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN}, toml=toml)
    result = soloist("runs", "-w", str(root), check=False)
    assert (result.returncode, result.stderr.strip()) == (1, f"error: {sentence}")
    assert "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_deploy_waits_for_the_connectors_secrets(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN}, toml=MAIL)
    refused = soloist("deploy", "-w", str(root), check=False)
    assert (refused.returncode, refused.stderr.strip()) == (
        1, "error: soloist.toml:7: [connectors.mail] password refers to secret "
           "MAIL_PASSWORD, which is not set; `soloist secret set MAIL_PASSWORD`")
    assert soloist("runs", "-w", str(root)).returncode == 0  # open is not refused

    subprocess.run([SOLOIST, "secret", "set", "MAIL_PASSWORD", "-w", str(root)],
                   input="mail-password-1\n", text=True, capture_output=True, check=True,
                   env={**os.environ, "SOLOIST_ACTOR": "tester"}, timeout=120)
    deployed = soloist("deploy", "-w", str(root))
    assert "deployed  playbook plain v1" in deployed.stdout
