from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from soloist.control import templating
from soloist.control.agents import Agent
from soloist.control.loader import load_definitions, load_playbook_text, load_text
from soloist.control.playbooks import CronTrigger
from soloist.control.policies import Policies, first_match
from soloist.errors import DefinitionError

INVOICE = """\
name: invoice
description: Send the monthly invoices
inputs:
  type: object
  properties:
    month: {type: string}
triggers:
  - manual
  - cron: "0 9 1 * *"
    timezone: Europe/Paris
    inputs: {month: "{{ now }}"}
steps:
  - id: fetch
    python: billing.invoices:fetch
    args: {month: "{{ inputs.month }}"}
  - id: send
    tool: email.send
    when: "{{ steps.fetch.output | length > 0 }}"
    args:
      to: "{{ steps.fetch.output.email }}"
      body: "Hello {{ steps.fetch.output.name }}"
    retry: {max_attempts: 5, backoff: 10s}
    check: ["output.sent"]
"""

CLERK = """\
name: clerk
instructions: You file invoices.
model: anthropic:claude-haiku
tools: [email.send]
memory: {read: [billing], write: [billing]}
"""

POLICIES = """\
rules:
  - name: big-payments
    match: {tool: "payments.*", when: "args.amount > 1000"}
    decision: needs_approval
"""


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems(root: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(root)
    return caught.value.problems


def one_problem(tmp_path: Path, text: str, name: str = "playbooks/p.yaml") -> str:
    write(tmp_path, name, text)
    found = problems(tmp_path)
    assert len(found) == 1, found
    return found[0]


def test_good_workspace_loads(tmp_path: Path) -> None:
    write(tmp_path, "playbooks/invoice.yaml", INVOICE)
    write(tmp_path, "agents/clerk.yml", CLERK)
    write(tmp_path, "policies.yaml", POLICIES)
    definitions = load_definitions(tmp_path)
    invoice = definitions.playbooks["invoice"]
    assert [step.id for step in invoice.steps] == ["fetch", "send"]
    assert isinstance(invoice.triggers[1], CronTrigger)
    assert invoice.steps[1].retry.backoff == 10.0
    assert definitions.agents["clerk"].memory.read == ["billing"]
    assert definitions.policies.rules[0].decision == "needs_approval"
    assert definitions.sources == {
        ("playbook", "invoice"): "playbooks/invoice.yaml",
        ("agent", "clerk"): "agents/clerk.yml",
        ("policies", "policies"): "policies.yaml",
    }


def test_empty_workspace_has_no_definitions(tmp_path: Path) -> None:
    definitions = load_definitions(tmp_path)
    assert definitions.playbooks == {} and definitions.agents == {}
    assert definitions.policies == Policies()


def test_yaml_syntax_error_reports_parser_position(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n   tool: t\n"
    problem = one_problem(tmp_path, text)
    assert problem.startswith("playbooks/p.yaml:4:4: YAML syntax: ")


def test_wrong_type_deep_in_steps_points_at_the_value(tmp_path: Path) -> None:
    text = """\
    name: p
    steps:
      - id: a
        tool: t
      - id: b
        tool: t
      - id: c
        tool: t
        retry:
          max_attempts: lots
    """
    problem = one_problem(tmp_path, text)
    assert problem.startswith("playbooks/p.yaml:10:21: steps.2.retry.max_attempts: input should")
    assert problem.endswith("(got 'lots')")


def test_unknown_key_points_at_the_key_with_a_suggestion(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    tool: t\n    retires: 3\n"
    problem = one_problem(tmp_path, text)
    assert problem == "playbooks/p.yaml:5:5: steps.0: unknown key 'retires' (did you mean 'retry'?)"


def test_missing_field_points_at_the_mapping(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    tool: t\n  - tool: u\n"
    problem = one_problem(tmp_path, text)
    assert problem == "playbooks/p.yaml:5:5: steps.1: missing required key 'id'"


def test_needs_of_an_unknown_step(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    tool: t\n  - id: b\n    tool: t\n    needs: [a, zz]\n"
    problem = one_problem(tmp_path, text)
    assert problem == (
        "playbooks/p.yaml:7:16: steps.1.needs: step 'b' needs 'zz', which is not a step"
    )


def test_cycle_in_needs(tmp_path: Path) -> None:
    text = """\
    name: p
    steps:
      - id: a
        tool: t
        needs: [c]
      - id: b
        tool: t
      - id: c
        tool: t
    """
    # b needs a implicitly, as the step before it.
    assert one_problem(tmp_path, text) == (
        "playbooks/p.yaml:5:12: steps.0.needs: the steps' needs form a cycle: "
        "a needs c needs b needs a"
    )


def test_bad_cron_and_bad_timezone(tmp_path: Path) -> None:
    text = """\
    name: p
    triggers:
      - cron: "0 25 * * *"
      - cron: "0 9 * * *"
        timezone: Europe/Atlantis
    steps:
      - {id: a, tool: t}
    """
    write(tmp_path, "playbooks/p.yaml", text)
    first, second = problems(tmp_path)
    assert first.startswith("playbooks/p.yaml:3:11: triggers.0.cron: cron expression '0 25")
    assert second.startswith("playbooks/p.yaml:5:15: triggers.1.timezone: unknown timezone")


def test_bad_jinja_in_args_and_expressions(tmp_path: Path) -> None:
    text = """\
    name: p
    steps:
      - id: a
        tool: t
        when: "inputs.x >"
        args:
          nested:
            - "fine {{ x }}"
            - "{{ foo( }}"
        check: ["output.ok", "output.(("]
    """
    write(tmp_path, "playbooks/p.yaml", text)
    found = problems(tmp_path)
    assert [p.split(": ")[0:2] for p in found] == [
        ["playbooks/p.yaml:5:11", "steps.0.when"],
        ["playbooks/p.yaml:9:11", "steps.0.args.nested.1"],
        ["playbooks/p.yaml:10:26", "steps.0.check.1"],
    ]
    assert "invalid template '{{ foo( }}'" in found[1]


def test_trigger_of_unknown_shape(tmp_path: Path) -> None:
    text = "name: p\ntriggers:\n  - daily\n  - event: x\n    wen: y\nsteps:\n  - {id: a, tool: t}\n"
    write(tmp_path, "playbooks/p.yaml", text)
    shape, typo = problems(tmp_path)
    assert shape.startswith("playbooks/p.yaml:3:5: triggers.0: expected a mapping with one of")
    assert typo == "playbooks/p.yaml:5:5: triggers.1: unknown key 'wen' (did you mean 'when'?)"


def test_invalid_input_schema(tmp_path: Path) -> None:
    text = "name: p\ninputs:\n  type: object\n  required: yes\nsteps:\n  - {id: a, tool: t}\n"
    problem = one_problem(tmp_path, text)
    assert problem.startswith("playbooks/p.yaml:4:13: inputs.required: not a valid JSON Schema")


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "playbooks/a.yaml", "name: same\nsteps: [{id: a, tool: t}]\n")
    write(tmp_path, "playbooks/b.yaml", "# the second one\nname: same\nsteps: [{id: a, tool: t}]\n")
    assert problems(tmp_path) == [
        "playbooks/b.yaml:2:7: name: playbook 'same' is also defined in playbooks/a.yaml"
    ]


def test_duplicate_key_in_one_file(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "name: p\nsteps: [{id: a, tool: t}]\nname: q\n")
    assert problem == "playbooks/p.yaml:3:1: name: key 'name' appears twice"


def test_all_problems_across_files_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "playbooks/good.yaml", INVOICE)
    write(tmp_path, "playbooks/bad.yaml", "name: bad\nsteps: []\n")
    write(tmp_path, "playbooks/broken.yml", "name: [\n")
    write(tmp_path, "agents/clerk.yaml", "name: clerk\nmax_turns: 0\n")
    write(tmp_path, "policies.yaml", "rules:\n  - name: r\n    decision: maybe\n")
    with pytest.raises(DefinitionError) as caught:
        load_definitions(tmp_path)
    files = [p.split(":")[0] for p in caught.value.problems]
    assert files == [
        "playbooks/bad.yaml",
        "playbooks/broken.yml",
        "agents/clerk.yaml",
        "agents/clerk.yaml",
        "policies.yaml",
    ]
    assert "and 4 more problem(s)" in str(caught.value)


def test_single_file_helpers() -> None:
    playbook = load_playbook_text(INVOICE, "invoice.yaml")
    assert playbook.name == "invoice"
    agent = load_text(CLERK, "agents/clerk.yaml", Agent)
    assert agent.model == "anthropic:claude-haiku"
    with pytest.raises(DefinitionError, match=r"^x\.yaml:1:1: the file is empty$"):
        load_playbook_text("", "x.yaml")
    with pytest.raises(DefinitionError, match=r"x\.yaml:1:1: the file must hold a mapping"):
        load_playbook_text("- a\n- b\n", "x.yaml")


def test_loaded_policies_match_tool_calls() -> None:
    policies = load_text(
        """\
rules:
  - name: no-deletes
    match: {tool: "*.delete", agent: "intern*"}
    decision: deny
  - name: big-payments
    match: {tool: "payments.*", tags: [money], when: "args.amount > 1000"}
    decision: needs_approval
  - name: rest
    decision: allow
""",
        "policies.yaml",
        Policies,
    )

    def decide(tool: str, agent: str | None, amount: int, tags: tuple[str, ...] = ()) -> str:
        rule = first_match(
            policies,
            agent=agent,
            playbook="invoice",
            tool=tool,
            tags=tags,
            args={"amount": amount},
            evaluate=templating.evaluate,
        )
        assert rule is not None
        return rule.name

    assert decide("crm.delete", "intern-1", 0) == "no-deletes"
    assert decide("crm.delete", None, 0) == "rest"  # a glob never matches a missing name
    assert decide("payments.send", "clerk", 5000, ("money",)) == "big-payments"
    assert decide("payments.send", "clerk", 5000) == "rest"  # lacks the tag
    assert decide("payments.send", "clerk", 10, ("money",)) == "rest"


def test_agent_model_and_rule_problems(tmp_path: Path) -> None:
    write(tmp_path, "agents/a.yaml", "name: a\ninstructions: x\nmodel: gpt\nmax_turns: 500\n")
    write(tmp_path, "policies.yaml", "rules:\n  - name: r\n    decision: allow\n    Match: {}\n")
    found = problems(tmp_path)
    assert [p.split(": ")[:2] for p in found] == [
        ["agents/a.yaml:3:8", "model"],
        ["agents/a.yaml:4:12", "max_turns"],
        ["policies.yaml:4:5", "rules.0"],
    ]
    assert found[2].endswith("unknown key 'Match' (did you mean 'match'?)")


def test_agent_steps_must_name_agents_of_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "a.yaml").write_text("name: helper\ninstructions: help\n")
    (tmp_path / "playbooks" / "p.yaml").write_text(
        "name: p\nsteps:\n  - id: s\n    agent: helpr\n    task: do it\n")
    with pytest.raises(DefinitionError) as caught:
        load_definitions(tmp_path)
    assert caught.value.problems == [
        "playbooks/p.yaml:4:12: steps.0.agent: no agent named 'helpr' in agents/ "
        "(known: helper)"]
