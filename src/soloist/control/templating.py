"""Templates and expressions in playbooks, rendered in a Jinja2 sandbox.

A string that is exactly one ``{{ expression }}`` renders to the expression's Python value,
so ``{{ steps.fetch.output }}`` passes a dict along rather than its text; any other string
renders to text. Undefined names are errors rather than empty strings: a typo in a
template must fail the step, not send an empty email.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    nodes,
)
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from soloist.errors import DeterministicError, StepFailure

_CACHE_SIZE = 1024
_SHOWN = 80  # characters of a template quoted in an error message


@dataclass(frozen=True)
class Reads:
    """What a template or expression reads from its context, found without running it."""

    names: frozenset[str]  # top-level names, e.g. ``inputs``; Jinja's own globals left out
    steps: tuple[str, ...]  # step ids read as ``steps.ID`` or ``steps['ID']``, in order


class Templates:
    """A sandboxed environment with its compiled templates cached."""

    def __init__(self, cache_size: int = _CACHE_SIZE) -> None:
        # Immutable: templates can read what they are given but never change it.
        self.environment = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self._template = lru_cache(maxsize=cache_size)(self._compile_template)
        self._expression = lru_cache(maxsize=cache_size)(self._compile_expression)
        self._native = lru_cache(maxsize=cache_size)(self._native_source)
        # Large enough that a deploy's syntax check and its reference check share it.
        self._reads = lru_cache(maxsize=8 * cache_size)(self._analyse)

    def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """``value`` with every string inside it rendered; other values pass through."""
        if isinstance(value, str):
            return self._render_string(value, context)
        if isinstance(value, Mapping):
            return {key: self.render(item, context) for key, item in value.items()}
        if isinstance(value, list):
            return [self.render(item, context) for item in value]
        if isinstance(value, tuple):
            return tuple(self.render(item, context) for item in value)
        return value

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """The value of ``expression``, written bare (``a > 1``) or braced (``{{ a > 1 }}``)."""
        source = self._native(expression)
        try:
            compiled = self._expression(expression if source is None else source)
            return _defined(compiled(**context))
        except StepFailure:
            raise
        except Exception as exc:  # anything a template can do wrong fails the step
            raise _failure("expression", expression, exc) from None

    def check_template(self, text: str) -> None:
        """Raise ``ValueError`` with Jinja's message when ``text`` is not a valid template."""
        self._reads(text, False)

    def check_expression(self, text: str) -> None:
        """Raise ``ValueError`` with Jinja's message when ``text`` is not a valid expression."""
        self._reads(text, True)

    def reads(self, text: str, *, expression: bool = False) -> Reads:
        """The names and steps ``text`` reads; ``ValueError`` when it is not valid.

        Parsing is enough (no code is generated), so checking thousands of templates at
        deploy stays cheap; unknown filters and tests, which Jinja reports only when it
        compiles, are looked up here too.
        """
        return self._reads(text, expression)

    def _analyse(self, text: str, expression: bool) -> Reads:
        try:
            tree = self._parse(text, expression)
        except TemplateError as exc:
            raise ValueError(_syntax_message(exc)) from None
        loaded: set[str] = set()
        declared: set[str] = set()
        steps: list[str] = []
        for node in tree.find_all(nodes.Node):  # one pass: templates can be many
            if isinstance(node, nodes.Name):
                (loaded if node.ctx == "load" else declared).add(node.name)
            elif isinstance(node, nodes.Filter | nodes.Test):
                self._known(node)
            elif isinstance(node, nodes.Getattr) and _is_steps(node.node):
                steps.append(node.attr)
            elif (isinstance(node, nodes.Getitem) and _is_steps(node.node)
                    and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
                steps.append(node.arg.value)
            elif isinstance(node, nodes.For):
                declared.add("loop")
            elif isinstance(node, nodes.Macro | nodes.CallBlock):
                declared.update(("caller", "varargs", "kwargs"))
        # A name set anywhere in the template (a loop variable, ``set``, a macro's
        # argument) counts as its own: Jinja's exact analysis (meta) runs its code
        # generator, too slow for thousands of templates, and this errs on accepting.
        names = loaded - declared - set(self.environment.globals)
        return Reads(frozenset(names), tuple(steps))

    def _known(self, node: nodes.Filter | nodes.Test) -> None:
        kind, known = (("filter", self.environment.filters) if isinstance(node, nodes.Filter)
                       else ("test", self.environment.tests))
        if node.name not in known:
            close = difflib.get_close_matches(node.name, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"no {kind} named {node.name!r}{hint}")

    def _parse(self, text: str, expression: bool) -> nodes.Template:
        source = self._native(text)
        if not expression and source is None:
            return self.environment.parse(text)
        # As Environment.compile_expression parses, without generating code.
        parser = Parser(self.environment, text if source is None else source, state="variable")
        body = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
        tree = nodes.Template([nodes.Output([body])], lineno=1)
        tree.set_environment(self.environment)
        return tree

    def _render_string(self, text: str, context: Mapping[str, Any]) -> Any:
        if "{" not in text:
            return text  # nothing to render: skip the cache and the sandbox
        source = self._native(text)
        try:
            if source is not None:
                return _defined(self._expression(source)(**context))
            return self._template(text).render(dict(context))
        except StepFailure:
            raise
        except Exception as exc:  # anything a template can do wrong fails the step
            raise _failure("template", text, exc) from None

    def _compile_template(self, text: str) -> Template:
        return self.environment.from_string(text)

    def _compile_expression(self, text: str) -> TemplateExpression:
        return self.environment.compile_expression(text, undefined_to_none=False)

    def _native_source(self, text: str) -> str | None:
        """The expression inside ``text`` when it is exactly one ``{{ ... }}``, else None."""
        if "{{" not in text:
            return None
        try:
            tokens = [t for t in self.environment.lex(text) if not _blank_data(t[1], t[2])]
        except TemplateError:
            return None  # let compilation report the syntax error
        kinds = [kind for _, kind, _ in tokens]
        if not kinds or kinds[0] != "variable_begin" or kinds[-1] != "variable_end":
            return None
        if kinds.count("variable_begin") != 1:
            return None
        return "".join(value for _, _, value in tokens[1:-1]).strip()


def _is_steps(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "steps"


def _blank_data(kind: str, value: str) -> bool:
    return kind == "data" and not value.strip()


def _defined(value: Any) -> Any:
    """``value``, after failing on an undefined result anywhere inside it."""
    if isinstance(value, Undefined):
        str(value)  # a strict undefined raises its own, precise error here
    elif isinstance(value, str) and type(value) is not str:
        return str(value)  # Markup (from tojson) escapes whatever is later added to it
    elif isinstance(value, list | tuple):
        for item in value:
            _defined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _defined(item)
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…")


def _failure(what: str, text: str, exc: Exception) -> DeterministicError:
    detail = str(exc) or type(exc).__name__
    return DeterministicError(f"{what} {_shown(text)} failed: {detail.rstrip('.')}.")


def _syntax_message(exc: TemplateError) -> str:
    return exc.message or str(exc)


_default: Templates | None = None


def default() -> Templates:
    """The shared instance, created on first use so importing this module does no work."""
    global _default
    if _default is None:
        _default = Templates()
    return _default


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside ``value``; see :meth:`Templates.render`."""
    return default().render(value, context)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression; see :meth:`Templates.evaluate`."""
    return default().evaluate(expression, context)


def check_template(text: str) -> None:
    """Raise ``ValueError`` when ``text`` is not a valid template."""
    default().check_template(text)


def check_expression(text: str) -> None:
    """Raise ``ValueError`` when ``text`` is not a valid expression."""
    default().check_expression(text)


def reads(text: str, *, expression: bool = False) -> Reads:
    """What ``text`` reads; see :meth:`Templates.reads`."""
    return default().reads(text, expression=expression)
