"""Deploy refuses what could only fail in a run, and files that would exhaust it.

Every refusal names ``file:line:column`` and nothing is written: the registry below runs
over a store that fails the test if a deploy so much as opens a transaction.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, cast

import pytest

from soloist.control.agents import Agent
from soloist.control.checks import ToolNames
from soloist.control.loader import load_definitions, load_text
from soloist.control.playbooks import MAX_STEPS, Playbook, topological_order
from soloist.control.registry import Registry
from soloist.control.safe_yaml import MAX_FILE_BYTES
from soloist.errors import DefinitionError
from soloist.store.base import Store

TOOLS = ToolNames(frozenset({"note", "sleep", "file.append", "ledger.record", "ledger.void",
                             "crm.lookup", "crm.note", "crm.delete", "shop.order"}),
                  frozenset({"files"}), {"shop.order": "shop.cancel", "crm.note": "crm.delete"})

TASKS = """\
import json


def draft(ctx, **args):
    return {"total": 1}


class Helpers:
    pass


if True:
    from json import dumps as render
"""

AGENT = """\
name: clerk
instructions: You keep the books.
tools: [note, "crm.*"]
"""


class _NoWrites:
    """A store a refused deploy must never touch."""

    def transaction(self) -> Any:
        raise AssertionError("a refused deploy opened a transaction")

    def read(self) -> Any:
        raise AssertionError("a refused deploy read the store")


def workspace(root: Path, playbook: str, *, tasks: str = TASKS,
              extra: dict[str, str] | None = None) -> Path:
    files = {"playbooks/p.yaml": playbook, "agents/clerk.yaml": AGENT, "tasks.py": tasks,
             **(extra or {})}
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def refused(root: Path) -> list[str]:
    registry = Registry(cast(Store, _NoWrites()))
    with pytest.raises(DefinitionError) as info:
        registry.deploy(root, "person:test", TOOLS)
    return info.value.problems


def accepted(root: Path) -> None:
    load_definitions(root, TOOLS)


# Each case: a playbook, and the one problem a deploy reports for it (file:line:col first).
CASES: dict[str, tuple[str, str]] = {
    "unknown tool": ("""\
        name: p
        steps:
          - id: a
            tool: notee
        """, "playbooks/p.yaml:4:11: steps.0.tool: no tool named 'notee' (did you mean 'note'?)"),
    "unknown tool, no close name": ("""\
        name: p
        steps:
          - {id: a, tool: zzz.qqq}
        """, "playbooks/p.yaml:3:19: steps.0.tool: no tool named 'zzz.qqq' (known: crm.delete,"),
    "MCP server not configured": ("""\
        name: p
        steps:
          - {id: a, tool: mcp.nowhere.read}
        """, "playbooks/p.yaml:3:19: steps.0.tool: no MCP server named 'nowhere' in "
             "soloist.toml's [mcp.servers] (configured: files)"),
    "MCP tool without a name": ("""\
        name: p
        steps:
          - {id: a, tool: mcp.files}
        """, "playbooks/p.yaml:3:19: steps.0.tool: 'mcp.files' names no tool of MCP server"),
    "python module missing": ("""\
        name: p
        steps:
          - {id: a, python: "nosuchmodule_xyz:draft"}
        """, "playbooks/p.yaml:3:21: steps.0.python: cannot import 'nosuchmodule_xyz': "),
    "python function missing": ("""\
        name: p
        steps:
          - {id: a, python: "tasks:drfat"}
        """, "playbooks/p.yaml:3:21: steps.0.python: tasks.py defines no 'drfat' "
             "(did you mean tasks:draft?)"),
    "installed module without the function": ("""\
        name: p
        steps:
          - {id: a, python: "json:nothing_here"}
        """, "playbooks/p.yaml:3:21: steps.0.python: module 'json' has no 'nothing_here'"),
    "compensation tool missing": ("""\
        name: p
        steps:
          - id: a
            tool: ledger.record
            compensate: {tool: ledger.unrecord}
        """, "playbooks/p.yaml:5:24: steps.0.compensate.tool: no tool named 'ledger.unrecord'"),
    "a tool whose own compensation is missing": ("""\
        name: p
        steps:
          - {id: a, tool: shop.order}
        """, "playbooks/p.yaml:3:19: steps.0.tool: tool 'shop.order' is compensated by "
             "'shop.cancel', which is not a tool; fix the compensate= of shop.order's @tool"),
    "compensation function missing": ("""\
        name: p
        steps:
          - id: a
            tool: ledger.record
            compensate: {python: "tasks:undo"}
        """, "playbooks/p.yaml:5:26: steps.0.compensate.python: tasks.py defines no 'undo'"),
    "unknown step": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "x"}}
          - {id: b, tool: note, args: {text: "{{ steps.aa.output }}"}}
        """, "playbooks/p.yaml:4:38: steps.1.args.text: template '{{ steps.aa.output }}' reads "
             "steps.aa, which is not a step (did you mean 'a'?)"),
    "later step": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "{{ steps.b.output }}"}}
          - {id: b, tool: note, args: {text: "x"}}
        """, "playbooks/p.yaml:3:38: steps.0.args.text: template '{{ steps.b.output }}' reads "
             "steps.b, which has not run when step 'a' runs; add 'b' to its needs"),
    "sibling, not an ancestor": ("""\
        name: p
        steps:
          - {id: root, tool: note, args: {text: "x"}}
          - {id: left, tool: note, args: {text: "x"}, needs: [root]}
          - {id: right, tool: note, args: {text: "{{ steps['left'].output }}"}, needs: [root]}
        """, "playbooks/p.yaml:5:42: steps.2.args.text: template \"{{ steps['left'].output }}\" "
             "reads steps.left, which has not run when step 'right' runs"),
    "its own output": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "x"}, gate: {message: "{{ steps.a.output }}"}}
        """, "playbooks/p.yaml:3:60: steps.0.gate.message: template '{{ steps.a.output }}' reads "
             "steps.a, which has not run when step 'a' runs"),
    "misspelt name": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "Hello {{ inptus.name }}"}}
        """, "playbooks/p.yaml:3:38: steps.0.args.text: template 'Hello {{ inptus.name }}' reads "
             "'inptus', which is not defined here (did you mean 'inputs'?); it can read inputs, "
             "run, steps"),
    "unknown name in a when": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "x"}, when: "input.n > 1"}
        """, "playbooks/p.yaml:3:50: steps.0.when: expression 'input.n > 1' reads 'input'"),
    "a check sees only the output": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "x"}, check: ["inputs.n > 1"]}
        """, "playbooks/p.yaml:3:52: steps.0.check.0: expression 'inputs.n > 1' reads 'inputs', "
             "which is not defined here; it can read output"),
    "event trigger templates see the event": ("""\
        name: p
        triggers:
          - {event: order.created, inputs: {id: "{{ inputs.id }}"}}
        steps:
          - {id: a, tool: note, args: {text: "x"}}
        """, "playbooks/p.yaml:3:41: triggers.0.inputs.id: template '{{ inputs.id }}' reads "
             "'inputs', which is not defined here; it can read event"),
    "unknown filter": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "{{ inputs.n | uper }}"}}
        """, "playbooks/p.yaml:3:38: steps.0.args.text: invalid template '{{ inputs.n | uper }}': "
             "no filter named 'uper' (did you mean 'upper'?)"),
    "syntax error in a gate message": ("""\
        name: p
        steps:
          - id: a
            tool: note
            args: {text: "x"}
            gate: {message: "Send {{ inputs.total "}
        """, "playbooks/p.yaml:6:21: steps.0.gate.message: invalid template 'Send {{ "
             "inputs.total ': unexpected end of template"),
    "syntax error in an agent task": ("""\
        name: p
        steps:
          - {id: a, agent: clerk, task: "Do {% if %} this"}
        """, "playbooks/p.yaml:3:33: steps.0.task: invalid template 'Do {% if %} this': "),
    "step tools beyond the grants": ("""\
        name: p
        steps:
          - {id: a, agent: clerk, task: "Do it", tools: [note, ledger.record]}
        """, "playbooks/p.yaml:3:56: steps.0.tools.1: 'ledger.record' is not among the tools "
             "granted to agent 'clerk' (its grants: note, crm.*); a step's tools can only "
             "narrow its agent's grants"),
    "step tools that are no tools": ("""\
        name: p
        steps:
          - {id: a, agent: clerk, task: "Do it", tools: [crm.lokup]}
        """, "playbooks/p.yaml:3:50: steps.0.tools.0: no tool named 'crm.lokup' "
             "(did you mean 'crm.lookup'?)"),
    "step tool glob beyond the grants": ("""\
        name: p
        steps:
          - {id: a, agent: clerk, task: "Do it", tools: ["ledger.*"]}
        """, "playbooks/p.yaml:3:50: steps.0.tools.0: 'ledger.*' is not among the tools granted"),
    "inputs not an object": ("""\
        name: p
        inputs: {type: string}
        steps:
          - {id: a, tool: note, args: {text: "x"}}
        """, "playbooks/p.yaml:2:9: inputs: the inputs schema must describe an object "
             "(type: object)"),
    "inputs not a JSON schema": ("""\
        name: p
        inputs: {type: object, properties: {n: {type: integr}}}
        steps:
          - {id: a, tool: note, args: {text: "x"}}
        """, "playbooks/p.yaml:2:47: inputs.properties.n.type: not a valid JSON Schema: "),
    "zero deadline": ("""\
        name: p
        budget: {deadline: 0s}
        steps:
          - {id: a, tool: note, args: {text: "x"}}
        """, "playbooks/p.yaml:2:20: budget.deadline: '0s' is no time at all; give a duration "
             "above zero"),
    "zero gate timeout": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "x"}, gate: {timeout: 0, default: reject}}
        """, "playbooks/p.yaml:3:60: steps.0.gate.timeout: 0 is no time at all"),
    "negative step timeout": ("""\
        name: p
        steps:
          - {id: a, tool: note, args: {text: "x"}, timeout: -5}
        """, "playbooks/p.yaml:3:53: steps.0.timeout: a duration cannot be negative"),
    "infinite duration": ("name: p\nbudget: {deadline: " + "9" * 400 + "d}\n"
                          "steps: [{id: a, tool: note, args: {text: x}}]\n",
                          "playbooks/p.yaml:2:20: budget.deadline: '9999"),
    "priority beyond the database": ("""\
        name: p
        priority: 2147483648
        steps:
          - {id: a, tool: note, args: {text: "x"}}
        """, "playbooks/p.yaml:2:11: priority: input should be less than or equal to 2147483647"),
    "NUL character": ("name: p\nsteps:\n  - {id: a, tool: note, args: {text: \"a\x00b\"}}\n",
                      "playbooks/p.yaml:3:40: the file holds the character U+0000, which YAML "
                      "does not allow; remove it"),
    "NUL character after accented text": (
        "name: p\ndescription: café\x00\nsteps: [{id: a, tool: note}]\n",
        "playbooks/p.yaml:2:18: the file holds the character U+0000"),
    "recursive alias": ("name: p\nsteps: &s [{id: a, tool: note, args: {x: *s}}]\n",
                        "playbooks/p.yaml:2:42: the alias *s is inside the value it names (&s); "
                        "a value cannot contain itself"),
    "deep nesting": ("name: p\nsteps: [{id: a, tool: note, args: {x: " + "[" * 100 + "]" * 100
                     + "}}]\n", "playbooks/p.yaml:2:99: values are nested more than 64 levels "
                     "deep"),
    "deep nesting through aliases": (
        "name: p\n" + "".join(f"a{i}: &a{i} [[[[[[[[*a{i - 1}]]]]]]]]\n" if i else
                              "a0: &a0 [1]\n" for i in range(10))
        + "steps: [{id: a, tool: note, args: {x: *a9}}]\n",
        "playbooks/p.yaml:10:17: values are nested more than 64 levels deep (through this alias)"),
    "non-finite number": ("name: p\nsteps: [{id: a, tool: note, args: {x: .nan}}]\n",
                          "playbooks/p.yaml:2:39: '.nan' is not a finite number"),
    "fallback function missing": ("""\
        name: p
        steps:
          - id: a
            agent: clerk
            task: write
            fallback: {python: "tasks:drafty"}
        """, "playbooks/p.yaml:6:24: steps.0.fallback.python: tasks.py defines no 'drafty' "
             "(did you mean tasks:draft?)"),
    "fallback reads a step that has not run": ("""\
        name: p
        steps:
          - id: a
            agent: clerk
            task: write
            fallback: {python: "tasks:draft", args: {x: "{{ steps.b.output }}"}}
          - {id: b, tool: note}
        """, "playbooks/p.yaml:6:49: steps.0.fallback.args.x: template '{{ steps.b.output }}' "
             "reads steps.b, which has not run when step 'a' runs"),
    "fallback reads a name it will not have": ("""\
        name: p
        steps:
          - id: a
            agent: clerk
            task: write
            fallback: {python: "tasks:draft", args: {x: "{{ output.body }}"}}
        """, "playbooks/p.yaml:6:49: steps.0.fallback.args.x: template '{{ output.body }}' "
             "reads 'output', which is not defined here"),
    "fallback on a step that is no agent's": ("""\
        name: p
        steps:
          - id: a
            python: tasks:draft
            fallback: {python: "tasks:draft"}
        """, "playbooks/p.yaml:3:5: steps.0: fallback belongs to agent steps"),
    "fallback template that does not parse": ("""\
        name: p
        steps:
          - id: a
            agent: clerk
            task: write
            fallback: {python: "tasks:draft", args: {x: "{{ inputs. }}"}}
        """, "playbooks/p.yaml:6:49: steps.0.fallback.args.x: invalid template"),
}


def test_a_fallback_is_checked_and_compiled_like_a_python_step(tmp_path: Path) -> None:
    root = workspace(tmp_path, """\
        name: p
        inputs: {type: object, properties: {lead: {type: string}}}
        steps:
          - id: a
            agent: clerk
            task: write to {{ inputs.lead }}
            fallback:
              python: tasks:draft
              args: {lead: "{{ inputs.lead }}"}
              models: ["local:*"]
        """)
    accepted(root)
    playbook = load_definitions(root, TOOLS).playbooks["p"]
    fallback = playbook.step("a").fallback
    assert fallback is not None and fallback.python == "tasks:draft"
    assert fallback.skips("local:smollm2-135m-instruct") == "local:*"
    assert fallback.skips("openai:gpt-4o-mini") is None


def test_a_fallback_in_python_is_the_same_field() -> None:
    from pydantic import ValidationError

    from soloist.control.playbooks import FallbackSpec, Step

    step = Step(id="a", agent="clerk", task="write",
                fallback=FallbackSpec(python="tasks:draft", models=["openai:gpt-4.1-nano"]))
    playbook = Playbook(name="p", steps=[step])
    assert playbook.step("a").fallback == FallbackSpec.model_validate(
        {"python": "tasks:draft", "models": ["openai:gpt-4.1-nano"]})
    with pytest.raises(ValidationError, match="fallback belongs to agent steps"):
        Step(id="b", python="tasks:draft", fallback={"python": "tasks:draft"})
    with pytest.raises(ValidationError, match=r"should match pattern"):
        FallbackSpec(python="not a target")


@pytest.mark.parametrize("playbook, expected", CASES.values(), ids=list(CASES))
def test_refused_at_deploy_with_its_place(tmp_path: Path, playbook: str, expected: str) -> None:
    problems = refused(workspace(tmp_path, playbook))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_billion_laughs_is_refused_at_the_alias_that_overflows(tmp_path: Path) -> None:
    rows = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
                   for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    text = f"name: p\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n{rows}steps: []\n"
    assert len(text.encode()) < 600
    problems = refused(workspace(tmp_path, text))
    assert problems == ["playbooks/p.yaml:7:8: the file expands to more than 200000 values "
                        "(through YAML aliases?); write it out or make it smaller"]


def test_laughs_made_of_long_text_are_refused_too(tmp_path: Path) -> None:
    text = ("name: p\nx: &x '" + "lol" * 30_000 + "'\n"
            "y: &y [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\n"
            "z: [*y, *y, *y, *y, *y, *y, *y, *y, *y, *y]\nsteps: []\n")
    problems = refused(workspace(tmp_path, text))
    assert len(problems) == 1 and problems[0].startswith("playbooks/p.yaml:4:"), problems
    assert "expands to more than 4 MiB of text" in problems[0]


def test_a_file_too_big_is_not_even_parsed(tmp_path: Path) -> None:
    text = "name: p\nsteps: [{id: a, tool: note}]\n# " + "x" * MAX_FILE_BYTES + "\n"
    problems = refused(workspace(tmp_path, text))
    assert problems == ["playbooks/p.yaml:1:1: the file is 1024 KiB; a definition file may "
                        "hold at most 1024 KiB"]
    with pytest.raises(DefinitionError, match=r"^p\.yaml:1:1: the file is"):
        load_text(text, "p.yaml", Playbook)


def test_too_many_steps(tmp_path: Path) -> None:
    steps = "".join(f"  - {{id: s{i}, tool: note}}\n" for i in range(MAX_STEPS + 1))
    problems = refused(workspace(tmp_path, f"name: p\nsteps:\n{steps}"))
    assert problems == [f"playbooks/p.yaml:3:3: steps: a playbook may have at most {MAX_STEPS} "
                        f"steps, this one has {MAX_STEPS + 1}; split it into playbooks that "
                        "start each other"]


def test_a_syntax_error_in_the_module_is_shown_at_its_line(tmp_path: Path) -> None:
    root = workspace(tmp_path, 'name: p\nsteps:\n  - {id: a, python: "tasks:draft"}\n',
                     tasks="import json\n\ndef draft(ctx)\n    return 1\n")
    (problem,) = refused(root)
    assert problem.startswith("playbooks/p.yaml:3:21: steps.0.python: cannot import 'tasks': "
                              "tasks.py:3:15: syntax error: "), problem


def test_every_problem_of_a_deploy_at_once_in_file_order(tmp_path: Path) -> None:
    root = workspace(tmp_path, """\
        name: p
        budget: {deadline: 0s}
        steps:
          - {id: a, tool: notee, retires: 3}
          - {id: b, python: "tasks:nope", args: {t: "{{ steps.c.output }}"}}
          - {id: c, tool: note, args: {text: "{{ inptus.x }}"}}
        """, extra={"playbooks/q.yaml": "name: q\nsteps:\n  - {id: a, tool: sleeep}\n"})
    problems = refused(root)
    assert [p.split(": ")[0] for p in problems] == [
        "playbooks/p.yaml:2:20", "playbooks/p.yaml:4:19", "playbooks/p.yaml:4:26",
        "playbooks/p.yaml:5:21", "playbooks/p.yaml:5:45", "playbooks/p.yaml:6:38",
        "playbooks/q.yaml:3:19"], problems


def test_python_playbooks_are_checked_too(tmp_path: Path) -> None:
    root = workspace(tmp_path, 'name: p\nsteps: [{id: a, tool: note, args: {text: "x"}}]\n',
                     extra={"playbooks/code.py": """\
        from soloist.control.playbooks import Playbook, Step

        CODED = Playbook(name="coded", steps=[
            Step(id="a", tool="notes"),
            Step(id="b", tool="note", output={"type": "objet"})])
        """})
    assert refused(root) == [
        "playbooks/code.py: steps.0.tool: no tool named 'notes' (did you mean 'note'?)",
        "playbooks/code.py: steps.1.output.type: not a valid JSON Schema: 'objet' is not valid "
        "under any of the given schemas"]


def test_what_a_run_will_find_is_accepted(tmp_path: Path) -> None:
    accepted(workspace(tmp_path, """\
        name: p
        inputs: {type: object, properties: {n: {type: integer}}}
        triggers:
          - manual
          - {cron: "0 9 * * 1", inputs: {at: "{{ fire_time }}"}}
          - {event: order.created, when: "event.total > 1", inputs: {n: "{{ event.total }}"}}
        budget: {deadline: 7d}
        priority: -2147483648
        steps:
          - {id: a, python: "tasks:draft", args: {n: "{{ inputs.n }}", r: "{{ range(3) | list }}"}}
          - {id: b, python: "tasks:render", args: {v: "{{ steps.a.output }}"}}
          - {id: c, tool: mcp.files.read, needs: [a]}
          - id: d
            agent: clerk
            task: "{% for x in steps.b.output %}{{ x }}{% endfor %} {{ run.id }}"
            tools: [crm.lookup, "crm.*", "*.note"]
            needs: [b, c]
          - id: e
            tool: ledger.record
            args: {text: "{{ steps['a'].output.total }}"}
            when: "steps.d.output and inputs.n > 1"
            check: ["output.ok"]
            gate: {message: "Record {{ steps.d.output }}?", timeout: 1d, default: reject}
            compensate: {tool: ledger.void, args: {id: "{{ step.output.id }} {{ steps.e.output }}"}}
          - {id: f, python: "tasks:Helpers", needs: []}
          - {id: g, python: "json:dumps", needs: []}
        """))


def test_without_the_workspace_tools_the_loader_checks_files_alone(tmp_path: Path) -> None:
    root = workspace(tmp_path, "name: p\nsteps: [{id: a, tool: notee}]\n")
    assert "p" in load_definitions(root).playbooks


def test_the_order_of_steps_is_linear() -> None:
    # A chain of the largest size, every step reading the first: no quadratic work anywhere.
    ids = [f"s{i}" for i in range(MAX_STEPS)]
    needs = [[]] + [[ids[i - 1]] for i in range(1, MAX_STEPS)]
    assert topological_order(ids, needs) == ids
    assert topological_order(["a", "b"], [["b"], ["a"]]) is None
    steps: list[dict[str, Any]] = [{"id": "s0", "tool": "note"}] + [
        {"id": f"s{i}", "tool": "note", "args": {"t": "{{ steps.s0.output }}"}}
        for i in range(1, MAX_STEPS)]
    playbook = Playbook.model_validate({"name": "long", "steps": steps})
    assert playbook.step(f"s{MAX_STEPS - 1}").id == f"s{MAX_STEPS - 1}"


def test_thousands_of_chained_steps_deploy(tmp_path: Path) -> None:
    count = 2500
    steps = "".join(f"  - {{id: s{i}, tool: note, args: {{text: \"{{{{ steps.s0.output }}}} "
                    f"{{{{ steps.s{max(i - 1, 0)}.output }}}}\"}}}}\n" for i in range(1, count))
    root = workspace(tmp_path, f"name: long\nsteps:\n  - {{id: s0, tool: note}}\n{steps}")
    definitions = load_definitions(root, TOOLS)
    assert len(definitions.playbooks["long"].steps) == count
    assert isinstance(definitions.agents["clerk"], Agent)


def test_an_agent_granted_a_tool_that_does_not_exist(tmp_path: Path) -> None:
    root = workspace(tmp_path, 'name: p\nsteps: [{id: a, tool: note, args: {text: "x"}}]\n',
                     extra={"agents/clerk.yaml": """\
        name: clerk
        instructions: You keep the books.
        tools: [note, notes, "crm.*", "mcp.files.*", "mcp.elsewhere.*", mcp.files.read]
        """})
    assert refused(root) == [
        "agents/clerk.yaml:3:15: tools.1: no tool named 'notes' (did you mean 'note'?)",
        "agents/clerk.yaml:3:46: tools.4: no MCP server named 'elsewhere' in soloist.toml's "
        "[mcp.servers] (configured: files)"]
