"""Display text: data can never style, hide, crash or forge what a person reads."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path

import pytest
from rich.console import Console

import soloist.interfaces.cli as cli
from soloist.control import display
from soloist.interfaces.cli import render

ACTIVE = (
    [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u061c",
       "\u2028", "\u2029", "\U000e0041", "\ud800"]
)


@pytest.mark.parametrize("char", ACTIVE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_active_character_is_escaped_visibly(char: str) -> None:
    shown = display.escape(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b")
    assert all(0x20 <= ord(c) < 0x7F for c in shown)
    assert display.escape(shown) == shown  # escaping twice changes nothing


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", "a\\nb"), ("a\rb", "a\\rb"), ("a\tb", "a\\tb"), ("\x1b[2J", "\\x1b[2J"),
    ("\x00", "\\x00"), ("\x9b", "\\x9b"), ("\u202eabc", "\\u202eabc"),
    ("\U000e0041", "\\U000e0041"),
])
def test_escapes_read_like_python_literals(raw: str, shown: str) -> None:
    assert display.escape(raw) == shown


@pytest.mark.parametrize("text", ["Zoë Ångström", "東京 €5", "👍", "[bold]x[/]", "a\\nb"])
def test_readable_text_is_left_alone(text: str) -> None:
    assert display.escape(text) == text


def test_a_block_keeps_its_lines_and_nothing_else() -> None:
    assert display.escape("a\n\tb\x1b\r", keep="\n\t") == "a\n\tb\\x1b\\r"


def test_one_line_and_fold() -> None:
    assert display.one_line("  Send 5\n  -> fake\r\n") == "Send 5\\n  -> fake"
    assert display.fold("Send {{ x }}\nto {{ y }}?\n") == "Send {{ x }} to {{ y }}?"


def test_escape_json_is_still_the_same_json() -> None:
    value = {"a": "x\u202ey\u200b\x7f\U000e0041\x9b", "n": 1}
    shown = display.escape_json(json.dumps(value, ensure_ascii=False))
    assert json.loads(shown) == value
    assert all(not display.is_active(c) for c in shown)


def test_no_category_of_active_characters_is_missed() -> None:
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}:
            assert display.is_active(char), f"U+{code:04X}"


def _printed(*objects: object, width: int = 80) -> str:
    out = io.StringIO()
    con = render.console()
    con.file = out
    con.width = width  # type: ignore[misc]
    con.print(*objects)
    return out.getvalue()


@pytest.mark.parametrize("value", ["[/]", "[conceal]x[/conceal]", "[bold red]x", ":smile:",
                                   "[link=http://evil]x[/link]"])
def test_markup_in_data_is_text(value: str) -> None:
    assert _printed(render.line("to ", value, "?")) == f"to {value}?\n"
    assert _printed(f"plain {value}") == f"plain {value}\n"  # a str printed is data too
    table = render.table("value")
    table.add_row(value)
    assert value in _printed(table)


def test_styles_come_only_from_the_cli() -> None:
    con = Console(file=io.StringIO(), force_terminal=True, color_system="standard")
    con.print(render.line(render.styled("id", "bold"), " [red]x"))
    out = con.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[1mid" in out and "[red]x" in out


def test_values_become_one_line_and_are_cut_after_escaping() -> None:
    assert render.plain({"a": "x\ny"}) == '{"a": "x\\ny"}'
    assert render.plain("\x1b" * 100, 10) == "\\x1b\\x1b\\…"
    assert len(render.plain("x" * 10_000, 60)) == 60
    assert render.text("a\nb").plain == "a\\nb"


def test_id_columns_are_never_cut_when_narrow() -> None:
    ids = ["r-1a2308b9697-c0ffee", "a-1a2308b9697-0ddba1/step-with-long-name/12"]
    table = render.table("run", "playbook", "state", "error", ids=("run",))
    for run_id in ids:
        table.add_row(run_id, "invoice v1", render.state("awaiting_approval"),
                      "an error that is long enough to need wrapping " * 3)
    for width in (30, 60, 80):
        out = _printed(table, width=width)
        for run_id in ids:
            assert run_id in out, width


def test_a_document_keeps_its_lines_even_with_crlf() -> None:
    assert render.block("one\r\ntwo\rthree\x1b[2J\n") == "one\ntwo\\rthree\\x1b[2J\n"


@pytest.mark.parametrize("width", [1, 2, 5, 20])
def test_a_cut_value_is_the_start_of_the_whole_one(width: int) -> None:
    value = "a\x1b\u202e" * 30
    whole = render.plain(value)
    cut = render.plain(value, width)
    assert len(cut) == width and cut.endswith("…") and whole.startswith(cut[:-1])


def test_the_cli_prints_only_through_render() -> None:
    """No CLI module builds its own console or table, or writes Rich markup: what they print
    goes through render, where a str is data."""
    markup = re.compile(r"\[/?(bold|red|green|dim|yellow|cyan|magenta|blue|link|conceal)\b|\[/\]")
    for path in Path(cli.__file__).parent.glob("*.py"):
        if path.name == "render.py":
            continue
        source = path.read_text()
        assert "Console(" not in source and "Table(" not in source, path.name
        assert not markup.search(source), path.name
