"""Secrets: encrypted at rest, resolved where used, redacted from everything stored."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.errors import ConfigError, InputError, NotFound
from soloist.workspace import Workspace

SECRET = "sk-live-4f9a2c7e1b8d"

TASKS = f'''
def leak(ctx):
    # A careless step: it returns the key, stages it, and then fails quoting it.
    ctx.stage("note", {{"text": "calling with {SECRET}"}})
    return {{"echo": "{SECRET}"}}

def fail(ctx):
    raise RuntimeError("auth failed for key {SECRET}")
'''

PLAYBOOKS = {
    "leaky": """
name: leaky
steps:
  - {id: a, python: "tasks:leak"}
  - {id: b, python: "tasks:fail"}
""",
}


def test_secret_is_encrypted_resolved_and_never_stored_in_clear(tmp_path: Path,
                                                                 db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ws.secrets.set("stripe_key", SECRET, "person:test")
        assert ws.secrets.resolve("secret:stripe_key") == SECRET
        assert ws.secrets.resolve("plain") == "plain"
        key = ws.settings.secret_key_file
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        run_id = ws.start("leaky", {"token": SECRET})
        ws.worker().run(until_idle=True)
        run = ws.get_run(run_id)
        assert run.state == "failed"
        assert "[secret:stripe_key]" in (run.error or "")
        assert ws.show(run_id).steps[0].output == {"echo": "[secret:stripe_key]"}
        assert ws.verify().ok  # the chain covers the redacted text
        dump = dump_database(db_url)
    assert SECRET not in dump
    assert SECRET[:12] not in dump
    assert "stripe_key" in dump  # the name is there, the value is not


def dump_database(url: str) -> str:
    """Every row of every table, as text: what an attacker reading the store would see."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite:///")
        con = sqlite3.connect(path)
        text = "\n".join(con.iterdump())
        con.close()
        wal = Path(path + "-wal")
        raw = Path(path).read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        return text + raw.decode("latin-1")
    import psycopg

    out: list[str] = []
    with psycopg.connect(url) as con:
        tables = [r[0] for r in con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            out.extend(str(row) for row in con.execute(f'SELECT * FROM "{table}"'))
    return "\n".join(out)


def test_wrong_key_bad_names_and_loose_permissions(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root) as ws:
        with pytest.raises(InputError, match="not a valid secret name"):
            ws.secrets.set("9 lives", "x" * 10, "t")
        with pytest.raises(NotFound, match="no secret named 'nope'"):
            ws.secrets.get("nope")
        ws.secrets.set("api", "value-123456", "t")
        key = ws.settings.secret_key_file
    # A key in the workspace's .soloist is tightened when the workspace opens; one kept
    # elsewhere (SOLOIST_SECRET_KEY_FILE) is refused when it is read.
    os.chmod(key, 0o644)
    Workspace(root).close()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    outside = tmp_path / "elsewhere.key"
    outside.write_bytes(key.read_bytes())
    os.chmod(outside, 0o644)
    with Workspace(root, env={"SOLOIST_SECRET_KEY_FILE": str(outside)}) as ws, \
            pytest.raises(ConfigError, match="readable by others"):
        ws.secrets.get("api")
    key.write_bytes(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    with Workspace(root) as ws:
        with pytest.raises(ConfigError, match="cannot be decrypted"):
            ws.secrets.get("api")
        with pytest.raises(ConfigError, match="cannot be decrypted"):  # no mixed keys
            ws.secrets.set("other", "value-other-123", "t")
        assert [r.name for r in ws.secrets.list()] == ["api"]


def test_secret_cli_reads_stdin_and_never_prints_values(tmp_path: Path) -> None:
    import sys

    soloist = str(Path(sys.executable).with_name("soloist"))
    root = write_workspace(tmp_path / "ws", {})
    set_result = subprocess.run([soloist, "secret", "set", "github", "-w", str(root)],
                                input="ghp_abcdefgh12345\n", capture_output=True, text=True,
                                check=True)
    assert "secret:github" in set_result.stdout
    listed = subprocess.run([soloist, "secret", "list", "-w", str(root)],
                            capture_output=True, text=True, check=True).stdout
    assert "github" in listed and "ghp_" not in listed
