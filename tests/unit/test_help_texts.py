"""What a newcomer reads first is plain text: every command's --help, and the comments.

Typer prints a type beside every option, ``<bool>`` beside flags that take no value
(``interfaces/cli/app.py`` leaves it out); reStructuredText in a docstring that Typer
shows as help comes out as literal backticks. Every command's help is read from one
subprocess, as ``soloist`` builds it (``main`` registers the command groups).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import soloist

SOURCES = Path(soloist.__file__).resolve().parents[1]
REPOSITORY = SOURCES.parent

EVERY_HELP = """
import json
from typer.main import get_command
from typer.testing import CliRunner
import soloist.interfaces.cli.app as cli

cli._register_more()

def walk(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, [*path, name])

shown = {}
for path in walk(get_command(cli.app), []):
    result = CliRunner().invoke(cli.app, [*path, "--help"], env={"COLUMNS": "200"})
    shown[" ".join(["soloist", *path])] = [result.exit_code, result.output]
print(json.dumps(shown))
"""

#: reStructuredText that help must not show: double backticks and roles (:class:`X`).
RST = re.compile(r"``|:(?:class|func|meth|data|mod|attr|exc|ref):`")


def every_help() -> dict[str, tuple[int, str]]:
    done = subprocess.run([sys.executable, "-c", EVERY_HELP], capture_output=True, text=True,
                          timeout=120, check=True, env={"PYTHONPATH": str(SOURCES)})
    return {name: (code, text) for name, (code, text) in json.loads(done.stdout).items()}


def test_no_help_shows_a_type_beside_a_flag_or_restructuredtext() -> None:
    shown = every_help()
    assert {"soloist", "soloist run", "soloist memory search", "soloist audit anchor"} <= set(
        shown)
    problems = []
    for name, (code, text) in sorted(shown.items()):
        if code != 0:
            problems.append(f"{name} --help exits {code}")
        problems += [f"{name} --help: {line.strip()}" for line in text.splitlines()
                     if "<bool>" in line or RST.search(line)]
    assert not problems, "\n".join(problems)


def test_no_comment_cites_a_design_document_the_repository_does_not_have() -> None:
    design = "DESIGN" + ".md"  # spelt apart, or this file would cite it
    assert not (REPOSITORY / design).exists()
    citing = [f"{path.relative_to(REPOSITORY)}:{number}"
              for folder in ("src", "tests", "bench") for path in (REPOSITORY / folder).rglob("*")
              if path.suffix in {".py", ".md", ".toml", ".yaml", ".sql"}
              for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if design in line]
    assert not citing, f"these cite {design}, which the repository does not have: {citing}"
