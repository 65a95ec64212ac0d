from __future__ import annotations

from typing import Any

import pytest

from soloist.control import templating
from soloist.control.templating import Templates
from soloist.errors import DeterministicError

CONTEXT: dict[str, Any] = {
    "inputs": {"amount": 42, "customer": "ACME"},
    "steps": {"fetch": {"output": {"lines": [1, 2], "total": 3}}},
}


def test_single_expression_keeps_its_native_value() -> None:
    assert templating.render("{{ steps.fetch.output }}", CONTEXT) == {"lines": [1, 2], "total": 3}
    assert templating.render("  {{ inputs.amount * 2 }} ", CONTEXT) == 84
    assert templating.render("{{ {'a': {'b': inputs.amount}} }}", CONTEXT) == {"a": {"b": 42}}
    assert templating.render("{{ none }}", {"none": None}) is None


def test_other_strings_render_to_text_and_containers_recurse() -> None:
    value = {
        "subject": "Invoice for {{ inputs.customer }}: {{ inputs.amount }}",
        "items": ["{{ steps.fetch.output.total }}", 7, "plain {text}"],
        "flag": True,
    }
    assert templating.render(value, CONTEXT) == {
        "subject": "Invoice for ACME: 42",
        "items": [3, 7, "plain {text}"],
        "flag": True,
    }
    assert templating.render("{{ inputs.amount }}{{ inputs.amount }}", CONTEXT) == "4242"
    as_json = templating.render("{{ steps.fetch.output | tojson }}", CONTEXT)
    assert as_json == '{"lines": [1, 2], "total": 3}'
    assert type(as_json) is str


def test_evaluate_bare_and_braced() -> None:
    assert templating.evaluate("inputs.amount > 10", CONTEXT) is True
    assert templating.evaluate("{{ inputs.amount > 100 }}", CONTEXT) is False
    assert templating.evaluate("steps.fetch.output.lines | length", CONTEXT) == 2


@pytest.mark.parametrize(
    "text", ["{{ inputs.missing }}", "Dear {{ nobody }}", "{{ [inputs.nope] }}"]
)
def test_undefined_is_a_deterministic_error(text: str) -> None:
    with pytest.raises(DeterministicError, match=r"template .* failed"):
        templating.render(text, CONTEXT)


def test_evaluate_undefined_and_type_errors() -> None:
    with pytest.raises(DeterministicError, match=r"expression 'inputs\.nope > 1' failed"):
        templating.evaluate("inputs.nope > 1", CONTEXT)
    with pytest.raises(DeterministicError, match="failed"):
        templating.evaluate("inputs.customer - 1", CONTEXT)


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "x {{ inputs.__class__ }}",
        "{{ steps.fetch.output.lines.append(3) }}",
    ],
)
def test_sandbox_blocks_unsafe_access(text: str) -> None:
    with pytest.raises(DeterministicError, match="unsafe"):
        templating.render(text, CONTEXT)
    assert CONTEXT["steps"]["fetch"]["output"]["lines"] == [1, 2]


def test_syntax_checks_raise_value_error() -> None:
    templating.check_template("Hello {{ name }} {% if x %}!{% endif %}")
    templating.check_expression("a > 1 and b")
    templating.check_expression("{{ a > 1 }}")
    with pytest.raises(ValueError, match="expected"):
        templating.check_template("{{ foo( }}")
    with pytest.raises(ValueError):
        templating.check_expression("a >")
    with pytest.raises(ValueError):
        templating.check_template("{% if x %}")


def test_instances_cache_compiled_templates() -> None:
    templates = Templates(cache_size=8)
    for _ in range(3):
        assert templates.render("n={{ n }}", {"n": 1}) == "n=1"
    info = templates._template.cache_info()
    assert (info.hits, info.misses) == (2, 1)
