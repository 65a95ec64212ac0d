"""Tools: named actions with a declared effect. ``@tool`` marks a function as one.

A ``read`` tool runs when the step executes. A ``write`` tool's call is staged as an
intent and dispatched after the step's check and gate, with an idempotency key.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from soloist.errors import ConfigError, DeterministicError, NotFound
from soloist.execution.context import ToolCall

Effect = Literal["read", "write"]
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__soloist_tool__"


@dataclass(frozen=True)
class Tool:
    name: str
    fn: Callable[..., Any]
    effect: Effect = "read"
    idempotent: bool = False
    description: str = ""
    tags: tuple[str, ...] = ()

    def invoke(self, args: dict[str, Any], call: ToolCall) -> Any:
        kwargs = dict(args)
        if "call" in inspect.signature(self.fn).parameters:
            kwargs["call"] = call
        try:
            return self.fn(**kwargs)
        except TypeError as exc:
            if "argument" in str(exc):
                raise DeterministicError(f"tool {self.name} was called wrongly: {exc}") from exc
            raise


def tool(
    name: str | None = None,
    *,
    effect: Effect = "read",
    idempotent: bool = False,
    tags: Iterable[str] = (),
) -> Callable[[F], F]:
    """Declare a function as a tool: ``@tool("crm.note", effect="write")``."""

    def mark(fn: F) -> F:
        spec = Tool(name or fn.__name__, fn, effect, idempotent,
                    inspect.getdoc(fn) or "", tuple(tags))
        setattr(fn, _MARK, spec)
        return fn

    return mark


def spec_of(fn: Callable[..., Any]) -> Tool:
    """The tool a ``@tool`` function declares."""
    spec = getattr(fn, _MARK, None)
    if not isinstance(spec, Tool):
        raise TypeError(f"{fn!r} is not a @tool function")
    return spec


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, spec: Tool) -> None:
        self.tools[spec.name] = spec

    def add_module(self, module_name: str) -> None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"cannot import tool module {module_name!r}: {exc}") from exc
        for value in vars(module).values():
            spec = getattr(value, _MARK, None)
            if isinstance(spec, Tool):
                self.add(spec)

    def get(self, name: str) -> Tool:
        try:
            return self.tools[name]
        except KeyError:
            known = ", ".join(sorted(self.tools)) or "none"
            raise NotFound(f"no tool named {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self.tools
