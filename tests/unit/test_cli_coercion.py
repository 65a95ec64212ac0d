"""The CLI converts its plain options itself (no pydantic), and leaves the rest to Typer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from soloist.interfaces.cli import coercion
from soloist.interfaces.cli.coercion import _convert, _plain_type


def test_plain_types_are_recognised() -> None:
    assert _plain_type(int) is int and _plain_type(str | None) is str
    assert _plain_type(Path | None) is Path
    assert _plain_type(list[str]) is None and _plain_type(int | str) is None


@pytest.mark.parametrize(("kind", "text", "value"), [
    (int, "42", 42), (int, " -7 ", -7), (float, "2.5", 2.5), (bool, "yes", True),
    (bool, "0", False), (str, "x", "x"), (Path, "a/b", Path("a/b"))])
def test_values_are_converted(kind: type, text: str, value: object) -> None:
    assert _convert(kind, text) == value


@pytest.mark.parametrize(("kind", "text"), [(int, "4.5"), (int, "abc"), (float, "x"),
                                            (bool, "maybe")])
def test_bad_values_are_refused(kind: type, text: str) -> None:
    with pytest.raises(ValueError):
        _convert(kind, text)


def test_a_command_converts_plain_options_and_typer_keeps_the_rest() -> None:
    coercion.install()
    app = typer.Typer()
    seen: list[object] = []

    @app.command()
    def main(count: int = 1, name: str | None = None,
             level: Annotated[int, typer.Option(min=1, max=3)] = 1) -> None:
        seen.append((count, name, level))

    runner = CliRunner()
    assert runner.invoke(app, ["--count", "3", "--name", "x", "--level", "2"]).exit_code == 0
    assert seen == [(3, "x", 2)]
    bad = runner.invoke(app, ["--count", "many"])
    assert bad.exit_code == 2 and "'many' is not a valid integer" in bad.output
    assert runner.invoke(app, ["--level", "9"]).exit_code == 2  # Typer's own range check
