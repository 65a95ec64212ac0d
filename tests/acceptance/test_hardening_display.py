"""What a person approves is what they see: hostile text through every command that prints.

A corpus of strings that try to style, hide, crash or forge what the CLI shows is put into
run inputs (so into step outputs, intent args and gate messages), step errors, memory facts
and documents, and the actor's name; then every command that prints them runs, with the real
binary, piped and on a terminal (tmux). Each value must show escaped, on its line, and the
real amount of every gate must be there, alone on its line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.slow  # minutes of real processes: make test-slow

AMOUNT = 90000
FORGED = '  -> ledger.record {"customer": "Ada", "amount": 9}  key forged'

#: name -> (hostile string, what its escaped form must show)
HOSTILE: dict[str, tuple[str, str]] = {
    "close_tag": ("[/]", "[/]"),
    "conceal": ("[conceal]x[/conceal]", "[conceal]x[/conceal]"),
    "bold_red": ("[bold red]loud", "[bold red]loud"),
    "emoji_code": (":warning: ok", ":warning: ok"),
    "forged_line": ("Ada\n" + FORGED, "Ada\\n" + FORGED),
    "cursor_up": ("Ada\x1b[1A\r" + FORGED, "Ada\\x1b[1A\\r" + FORGED),
    "clear_screen": ("\x1b[2Jgone", "\\x1b[2Jgone"),
    "hyperlink": ("\x1b]8;;http://evil\x07link\x1b]8;;\x07",
                  "\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07"),
    "overwrite": ("Ada\ramount 9", "Ada\\ramount 9"),
    "bidi": ("\u202eevil\u2066x\u2069", "\\u202eevil\\u2066x\\u2069"),
    "zero_width": ("A\u200bd\ufeffa", "A\\u200bd\\ufeffa"),
    "nul_del_c1": ("a\x00b\x7fc\x9bd", "a\\x00b\\x7fc\\x9bd"),
    "line_separator": ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
    "secret_like": ("[secret:TOKEN]", "[secret:TOKEN]"),
    "long": ("L" * 3000 + "[/]", "L" * 3000 + "[/]"),
}
#: characters that must never reach the output raw (the tables' own box drawing is fine)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
ACTIVE = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def as_json(value: Any) -> str:
    """How a value inside JSON (intent args, outputs) shows: JSON's own escapes for C0
    characters, and the rest of the active characters escaped the same way as in text."""
    def one(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return ACTIVE.sub(one, json.dumps(value, ensure_ascii=False))

PLAYBOOKS = {
    "hostile.yaml": """\
name: hostile
inputs:
  type: object
  required: [customer, amount]
  properties: {customer: {type: string}, amount: {type: number}}
steps:
  - id: draft
    python: tasks:hostile_draft
    args: {customer: "{{ inputs.customer }}", amount: "{{ inputs.amount }}"}
  - id: send
    python: tasks:hostile_send
    args: {draft: "{{ steps.draft.output }}"}
    gate:
      message: >
        Send an invoice of {{ inputs.amount }}
        to {{ inputs.customer }}?
""",
    "failing.yaml": """\
name: failing
inputs:
  type: object
  required: [customer]
  properties: {customer: {type: string}}
steps:
  - id: boom
    python: tasks:hostile_fail
    args: {customer: "{{ inputs.customer }}"}
""",
}

TASKS = '''

def hostile_draft(ctx, customer, amount):
    return {"customer": customer, "amount": amount, "note": customer}


def hostile_send(ctx, draft):
    ctx.stage("ledger.record", {"customer": draft["customer"], "amount": draft["amount"]},
              f"record {draft['customer']}")
    return {"sent": draft["customer"]}


def hostile_fail(ctx, customer):
    from soloist.errors import DeterministicError

    raise DeterministicError(customer)
'''


#: every string of the corpus in one: what a detail view (show, get, why, document) gets
ALL = "".join(value for value, _ in HOSTILE.values())
ALL_SHOWN = "".join(shown for _, shown in HOSTILE.values())
ACTOR = "tester" + HOSTILE["bold_red"][0] + "\x1b[2J"
ACTOR_SHOWN = "person:tester[bold red]loud\\x1b[2J"
FAILING = ("close_tag", "clear_screen", "all")


class Hostile:
    def __init__(self, root: Path) -> None:
        self.root = root
        # The actor's name is data too: it shows in versions, memory listings and the log.
        self.env = {"SOLOIST_ACTOR": ACTOR}
        self.gates: dict[str, str] = {}  # name (or "all") -> run id waiting at its gate
        self.failed: dict[str, str] = {}  # name (or "all") -> run id failed with the string

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``soloist ARGS``, piped, wide enough that no table cell wraps (so that a value
        reads whole on its line; test_ids_are_never_cut_when_piped_or_narrow goes narrow)."""
        return soloist(*args, "-w", str(self.root), env={**self.env, "COLUMNS": "5000"},
                       check=check)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    base = tmp_path_factory.mktemp("display")
    root = base / "company"
    soloist("init", str(root))
    for name, body in PLAYBOOKS.items():
        (root / "playbooks" / name).write_text(body)
    with (root / "tasks.py").open("a") as tasks:
        tasks.write(TASKS)
    ws = Hostile(root)
    ws.run("deploy")
    corpus = {**{name: value for name, (value, _) in HOSTILE.items()}, "all": ALL}
    lines = []
    for name, value in corpus.items():
        ws.gates[name] = _start(ws, "hostile", value, AMOUNT)
        if name in FAILING:
            ws.failed[name] = _start(ws, "failing", value, None)
        lines.append({"type": "fact", "namespace": "hostile", "subject": name, "key": "k",
                      "value": value, "reason": value})
        lines.append({"type": "document", "namespace": "docs", "key": name,
                      "text": f"findme {value} line two\nline three", "metadata": {}})
    lines.append({"type": "fact", "namespace": "nested", "subject": "all", "key": "k",
                  "value": {"nested": ALL, "amount": AMOUNT}, "reason": "nested"})
    memory = base / "memory.jsonl"
    memory.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ws.run("memory", "import", str(memory))
    worker = subprocess.Popen([SOLOIST, "worker", "-w", str(root)],
                              env={**os.environ, **ws.env, "SOLOIST_POLL_SECONDS": "0.05"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(lambda: len(json.loads(ws.run("approvals", "--json").stdout))
                    == len(ws.gates))
        _wait_until(lambda: sum(r["state"] == "failed" for r in json.loads(
            ws.run("runs", "--limit", "100", "--json").stdout)) == len(ws.failed))
    finally:
        worker.terminate()
        worker.wait(30)
    yield ws


def _start(ws: Hostile, playbook: str, customer: str, amount: int | None) -> str:
    inputs: dict[str, Any] = {"customer": customer}
    if amount is not None:
        inputs["amount"] = amount
    out = ws.run("run", playbook, "--input", json.dumps(inputs), "--json").stdout
    return str(json.loads(out)["id"])


def _wait_until(done: Any, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if done():
            return
        time.sleep(0.3)
    raise AssertionError("the hostile runs did not reach their gates or fail in time")


def _clean(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have printed the corpus safely."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    raw = RAW.search(result.stdout)
    assert raw is None, f"raw {raw.group()!r} in the output" if raw else ""
    return result.stdout


def _check_gates(lines: list[str], hostile: Hostile) -> None:
    """Each gate shows its message and its one intent, each whole on its own line."""
    for name, (value, shown) in [*HOSTILE.items(), ("all", (ALL, ALL_SHOWN))]:
        run_id = hostile.gates[name]
        header = [i for i, line in enumerate(lines) if f" run {run_id} " in line]
        assert len(header) == 1, name
        message, intent = lines[header[0] + 1], lines[header[0] + 2]
        # The gate message, folded from two template lines, is one line with the value.
        assert message == f"  Send an invoice of {AMOUNT} to {shown}?", name
        args = as_json({"customer": value, "amount": AMOUNT})
        assert intent == f"  -> ledger.record {args}  key {run_id}/send/0", name
    # Every intent line is a real one: nothing forged a line of its own.
    assert sum(line.startswith("  -> ") for line in lines) == len(hostile.gates)
    assert not any(line.startswith(FORGED) for line in lines)


def test_approvals_show_every_value_escaped_and_the_real_amount_alone(
        hostile: Hostile) -> None:
    _check_gates(_clean(hostile.run("approvals")).splitlines(), hostile)


def test_runs_list_shows_whole_ids_and_escaped_errors(hostile: Hostile) -> None:
    out = _clean(hostile.run("runs", "--limit", "100"))
    for run_id in [*hostile.gates.values(), *hostile.failed.values()]:
        assert run_id in out  # whole, never cut to "r-1a2308b9697-c..."
    for name in ("close_tag", "clear_screen"):  # errors are cut to fit; their start shows
        assert HOSTILE[name][1] + " " in out, name


@pytest.mark.parametrize("columns", ["60", "200"])
def test_ids_are_never_cut_when_piped_or_narrow(hostile: Hostile, columns: str) -> None:
    env = {**hostile.env, "COLUMNS": columns}
    runs = _clean(soloist("runs", "--limit", "100", "-w", str(hostile.root), env=env))
    for run_id in [*hostile.gates.values(), *hostile.failed.values()]:
        assert run_id in runs
    for name in ("forged_line", "all"):
        run_id = hostile.gates[name]
        shown = _clean(soloist("show", run_id, "-w", str(hostile.root), env=env))
        assert f"{run_id}/send/0" in shown  # the intent key, whole
        approvals = [line for line in shown.splitlines() if line.startswith("approval a-")]
        assert len(approvals) == 1
        assert re.match(r"approval a-[0-9a-f]+-[0-9a-f]{6} on send: ", approvals[0])
    _check_gates(_clean(soloist("approvals", "-w", str(hostile.root), env=env)).splitlines(),
                 hostile)


def test_show_prints_inputs_outputs_intents_and_errors_escaped(hostile: Hostile) -> None:
    gate = _clean(hostile.run("show", hostile.gates["all"]))
    lines = gate.splitlines()
    assert lines[0].startswith(hostile.gates["all"] + " hostile v1 running  started ")
    assert lines[0].endswith(f" by {ACTOR_SHOWN}, took -")
    assert lines[1] == "inputs: " + as_json({"customer": ALL, "amount": AMOUNT})
    waiting = [line for line in lines if line.startswith("approval ")]
    assert waiting == [f"approval {waiting[0].split()[1]} on send: Send an invoice of "
                       f"{AMOUNT} to {ALL_SHOWN}? -> waiting"]
    # The step outputs and the intent args are cut to fit their cells; their start shows.
    assert as_json(ALL)[:30] in gate
    for name in FAILING:
        shown = ALL_SHOWN if name == "all" else HOSTILE[name][1]
        value = ALL if name == "all" else HOSTILE[name][0]
        failed = _clean(hostile.run("show", hostile.failed[name])).splitlines()
        assert failed[1] == "inputs: " + as_json({"customer": value})
        assert failed[2].startswith("error: ") and failed[2].endswith(shown)


def test_show_step_and_log_print_events_escaped(hostile: Hostile) -> None:
    step = _clean(hostile.run("show", hostile.gates["all"], "--step", "send"))
    assert all(line[:6].strip().isdigit() for line in step.splitlines())  # one per event
    requested = [line for line in step.splitlines() if " approval.requested " in line]
    assert len(requested) == 1
    assert as_json({"customer": ALL, "amount": AMOUNT}) in requested[0]  # whole
    failed = _clean(hostile.run("show", hostile.failed["all"], "--step", "boom"))
    assert all(line[:6].strip().isdigit() for line in failed.splitlines())
    assert as_json(ALL)[1:-1] in failed
    log = _clean(hostile.run("log", "--run", hostile.gates["all"]))
    assert all(line[:6].strip().isdigit() for line in log.splitlines())
    assert f"[{ACTOR_SHOWN}]" in log  # the actor, escaped too
    everything = _clean(hostile.run("log", "--limit", "100000"))
    assert all(line[:6].strip().isdigit() for line in everything.splitlines())


def test_memory_listings_print_values_escaped(hostile: Hostile) -> None:
    facts = _clean(hostile.run("memory", "facts", "hostile"))
    for name, (_, shown) in HOSTILE.items():
        if name != "long":
            assert f"│ {name} " in facts and f"│ {shown[:40]}" in facts, name
    assert ACTOR_SHOWN in facts
    got = _clean(hostile.run("memory", "get", "hostile", "all", "k"))
    assert json.loads(got) == ALL and len(got.splitlines()) == 1  # the same JSON, escaped
    nested = _clean(hostile.run("memory", "get", "nested", "all", "k"))
    assert json.loads(nested) == {"nested": ALL, "amount": AMOUNT}
    history = _clean(hostile.run("memory", "history", "hostile", "all", "k"))
    assert ALL_SHOWN[:30] in history and ACTOR_SHOWN in history
    why = _clean(hostile.run("memory", "why", "hostile", "all", "k")).splitlines()
    assert len(why) == 1 and why[0].startswith("v1 put ")
    assert f" by {ACTOR_SHOWN} " in why[0]
    assert why[0].endswith(": " + ALL_SHOWN)


def test_memory_documents_and_search_print_text_escaped(hostile: Hostile) -> None:
    text = _clean(hostile.run("memory", "document", "docs", "all"))
    # A document keeps its own lines (so the forged line's newline stays one); nothing
    # else in it acts on the terminal.
    kept = ALL_SHOWN.replace("\\n", "\n")
    assert text == f"findme {kept} line two\nline three\n"
    history = _clean(hostile.run("memory", "document", "docs", "all", "--history"))
    assert f"findme {ALL_SHOWN}"[:40] in history and ACTOR_SHOWN in history
    found = _clean(hostile.run("memory", "search", "findme", "--k", "100"))
    for _, shown in HOSTILE.values():
        assert f"findme {shown}"[:40] in found


def test_versions_print_the_actor_escaped(hostile: Hostile) -> None:
    assert ACTOR_SHOWN in _clean(hostile.run("versions"))
    assert ACTOR_SHOWN in _clean(hostile.run("versions", "playbook", "hostile"))


def test_json_output_keeps_the_values_exactly(hostile: Hostile) -> None:
    pending = json.loads(_clean(hostile.run("approvals", "--json")))
    customers = {p["intents"][0]["args"]["customer"] for p in pending}
    assert customers == {value for value, _ in HOSTILE.values()} | {ALL}


def test_approvals_on_a_terminal_show_the_real_amount_and_no_forged_line(
        hostile: Hostile, tmp_path: Path) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing; .ci/run installs it")
        pytest.skip("tmux is not installed")
    socket = tmp_path / "tmux.sock"
    env = {**os.environ, **hostile.env}
    env.pop("TMUX", None)
    command = f"{SOLOIST} approvals -w {hostile.root}; echo; echo __DONE__; sleep 60"
    base = [tmux, "-S", str(socket), "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-s", "display", "-x", "220", "-y", "60",
                    command], env=env, check=True, timeout=30)
    try:
        deadline = time.time() + 90
        screen = ""
        while time.time() < deadline:
            # -J joins lines the terminal wrapped; -S - takes the scrolled-off part too.
            screen = subprocess.run([*base, "capture-pane", "-p", "-J", "-S", "-",
                                     "-t", "display"], env=env, capture_output=True,
                                    text=True, timeout=30).stdout
            if "__DONE__" in screen:
                break
            time.sleep(0.3)
        assert "__DONE__" in screen, screen
    finally:
        subprocess.run([*base, "kill-server"], env=env, timeout=30, check=False)
    _check_gates([line.rstrip() for line in screen.splitlines()], hostile)
    assert "http://evil" in screen  # shown as text, not hidden in a link
