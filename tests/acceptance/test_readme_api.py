"""The README's Python API example runs as written, on the workspace `soloist init` writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import soloist
from soloist.interfaces.cli.scaffold import write_example

README = Path(__file__).resolve().parents[2] / "README.md"
SOURCES = Path(soloist.__file__).resolve().parents[1]


def api_example() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Python API\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python API section has no python example"
    return match.group(1)


def _is_error(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, soloist.SoloistError)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    write_example(tmp_path / "my-company")
    env = {**os.environ, "PYTHONPATH": str(SOURCES), "SOLOIST_ACTOR": "tester"}
    done = subprocess.run([sys.executable, "-c", api_example()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Send an invoice of 270 to Ada?",
        "no playbook named 'invoices' is deployed; run `soloist deploy` after adding it to "
        "playbooks/",
    ]
    ledger = (tmp_path / "my-company" / "ledger.tsv").read_text(encoding="utf-8")
    assert ledger.endswith("/send/0\tAda\t270.00\n")  # the idempotency key, then the entry


def test_the_readme_names_every_public_name_but_the_errors() -> None:
    section = README.read_text(encoding="utf-8").split("\n## Python API\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    missing = [n for n in soloist.__all__ if f"`{n}`" not in section
               and not _is_error(getattr(soloist, n))]  # the tree is soloist/errors.py's
    assert not missing, f"the README's Python API section does not name {missing}"
