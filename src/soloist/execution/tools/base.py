"""Tools: named actions with a declared effect. ``@tool`` marks a function as one.

A ``read`` tool runs when the step executes. A ``write`` tool's call is staged as an
intent and dispatched after the step's check and gate, with an idempotency key.

A tool declares its name, a description (the first line of its docstring), a JSON schema
for its arguments (built from the function's type hints) and, when the function annotates
its return type, one for its result; its effect, whether a write is idempotent, the tool
that compensates it and its risk tags. :meth:`Tool.invoke` validates the arguments against
the schema before the function runs, so a bad call fails with one sentence naming the tool
and the field rather than a ``TypeError`` from deep inside the tool.

The parameter named ``call`` is not an argument: it receives the :class:`ToolCall` (who
asks, and the idempotency key) and is left out of the schema.
"""

from __future__ import annotations

import inspect
import traceback
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from soloist.control import templating
from soloist.control.modules import SiblingImport, WorkspaceModules
from soloist.errors import ConfigError, DeterministicError, NotFound
from soloist.execution.context import ToolCall

Effect = Literal["read", "write"]
EffectOf = Callable[[Mapping[str, Any]], Effect]
#: (validated args, workspace folder) -> None, or a DeterministicError saying what is wrong
ArgsCheck = Callable[[Mapping[str, Any], str], None]
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__soloist_tool__"
_CALL = "call"  # the parameter that receives the ToolCall; never an argument
_SHOWN = 60  # characters of a bad value quoted in an error message


@dataclass(frozen=True)
class ToolCompensation:
    """The tool that undoes a write, and how to derive its arguments.

    ``args`` is a template rendered over ``{"args": <the original call's arguments>,
    "result": <what the original call returned>}``, e.g. ``{"id": "{{ result.id }}"}``.
    """

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def arguments(self, args: Mapping[str, Any], result: Any) -> dict[str, Any]:
        """The compensating call's arguments for one original call and its result."""
        rendered = templating.render(dict(self.args), {"args": dict(args), "result": result})
        assert isinstance(rendered, dict)
        return rendered


@dataclass(frozen=True)
class Tool:
    """A tool. Positional order (name, fn, effect, idempotent, description, tags) is stable.

    ``args_schema`` left empty is built from ``fn``'s signature; a tool given an explicit
    JSON schema (an MCP tool, say) has its arguments checked against it with jsonschema
    instead. ``result_schema`` left ``None`` comes from the return annotation, if any.
    ``effect`` is the tool's effect; a tool whose effect depends on its arguments (one
    ``http.request`` for GET and POST) also gives ``effect_of``: see :meth:`effect_for`.
    """

    name: str
    fn: Callable[..., Any]
    effect: Effect = "read"
    idempotent: bool = False
    description: str = ""
    tags: tuple[str, ...] = ()
    args_schema: dict[str, Any] = field(default_factory=dict, compare=False)
    result_schema: dict[str, Any] | None = field(default=None, compare=False)
    compensate: ToolCompensation | None = field(default=None, compare=False)
    effect_of: EffectOf | None = field(default=None, compare=False)
    check_args: ArgsCheck | None = field(default=None, compare=False)
    _model: type[BaseModel] | None = field(default=None, init=False, repr=False, compare=False)
    _params: dict[str, str] = field(default_factory=dict, init=False, repr=False,
                                    compare=False)

    def __post_init__(self) -> None:
        if self.effect not in ("read", "write"):
            raise TypeError(f"tool {self.name}: effect must be 'read' or 'write', "
                            f"not {self.effect!r}")
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.args_schema:
            try:
                jsonschema.Draft202012Validator.check_schema(self.args_schema)
            except jsonschema.SchemaError as exc:
                raise TypeError(f"tool {self.name}: invalid args_schema: {exc.message}"
                                ) from None
        else:
            model, params = _arguments_model(self.name, self.fn)
            schema = model.model_json_schema(by_alias=True)
            if self.description:
                schema["description"] = self.description
            object.__setattr__(self, "_model", model)
            object.__setattr__(self, "_params", params)
            object.__setattr__(self, "args_schema", schema)
        if self.result_schema is None:
            object.__setattr__(self, "result_schema", _result_schema(self.name, self.fn))

    def effect_for(self, args: Mapping[str, Any]) -> Effect:
        """The effect of calling this tool with ``args``.

        ``effect`` unless the tool has ``effect_of``; when that fails or answers anything
        but ``read``, the call counts as a write, so doubt always stages an intent.
        """
        if self.effect_of is None:
            return self.effect
        try:
            effect = self.effect_of(args)
        except Exception:
            return "write"
        return "read" if effect == "read" else "write"

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` checked against the schema (and converted, for a function's schema).

        Raises :class:`DeterministicError` naming the tool and the first bad field.
        """
        if not isinstance(args, Mapping):
            raise DeterministicError(f"tool {self.name} takes its arguments as a mapping, "
                                     f"not {type(args).__name__}.")
        if self._model is None:
            validator = jsonschema.Draft202012Validator(self.args_schema)
            error = best_match(validator.iter_errors(dict(args)))
            if error is not None:
                raise DeterministicError(_jsonschema_message(self.name, error))
            return dict(args)
        try:
            parsed = self._model.model_validate(dict(args))
        except ValidationError as exc:
            raise DeterministicError(_pydantic_message(self.name, exc)) from None
        values = {self._params[key]: getattr(parsed, key)
                  for key in parsed.model_fields_set if key in self._params}
        values.update(parsed.model_extra or {})
        return values

    def admit(self, args: Mapping[str, Any], workspace: str) -> dict[str, Any]:
        """:meth:`validate`, then the tool's own rules on the values (``check_args``: a
        file tool's path must be inside the workspace, say).

        Called when an intent is staged, again before the first dispatch of a step, and by
        :meth:`invoke`: a call that could only fail later is refused while nothing has
        happened yet.
        """
        values = self.validate(args)
        if self.check_args is not None:
            self.check_args(values, workspace)
        return values

    def invoke(self, args: Mapping[str, Any], call: ToolCall) -> Any:
        """Admit ``args``, then call the function (with ``call`` if it takes it)."""
        kwargs = self.admit(args, call.workspace)
        if _takes_call(self.fn):
            kwargs[_CALL] = call
        result = self.fn(**kwargs)
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        return result

    def describe(self) -> dict[str, Any]:
        """What an agent (or an MCP client) is shown about this tool."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "input_schema": self.args_schema,
            "effect": self.effect,
            "idempotent": self.idempotent,
            "tags": list(self.tags),
        }
        if self.effect_of is not None:
            out["effect_depends_on_args"] = True
        if self.result_schema is not None:
            out["result_schema"] = self.result_schema
        if self.compensate is not None:
            out["compensate"] = {"tool": self.compensate.tool, "args": dict(self.compensate.args)}
        return out


CompensateSpec = ToolCompensation | tuple[str, Mapping[str, Any]]


def tool(
    name: str | None = None,
    *,
    effect: Effect = "read",
    idempotent: bool = False,
    tags: Iterable[str] = (),
    compensate: CompensateSpec | None = None,
    effect_of: EffectOf | None = None,
    description: str | None = None,
    check_args: ArgsCheck | None = None,
) -> Callable[[F], F]:
    """Declare a function as a tool: ``@tool("crm.note", effect="write")``.

    ``compensate=("crm.delete", {"id": "{{ result.id }}"})`` names the tool that undoes
    this one and its arguments, rendered over the original ``args`` and ``result``.
    """

    def mark(fn: F) -> F:
        tool_name = name or fn.__name__
        spec = Tool(
            tool_name, fn, effect, idempotent,
            _first_line(inspect.getdoc(fn)) if description is None else description,
            tuple(tags),
            compensate=None if compensate is None else _compensation(tool_name, compensate),
            effect_of=effect_of, check_args=check_args,
        )
        setattr(fn, _MARK, spec)
        return fn

    return mark


def spec_of(fn: Callable[..., Any]) -> Tool:
    """The tool a ``@tool`` function declares."""
    spec = getattr(fn, _MARK, None)
    if not isinstance(spec, Tool):
        raise TypeError(f"{fn!r} is not a @tool function")
    return spec


def import_problem(exc: BaseException) -> str:
    """Where and why importing a person's module failed: ``file:line: what``, without a
    traceback (a syntax error names its own place; other errors the deepest frame)."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno or 1}: syntax error: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen")]
    where = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    if isinstance(exc, SiblingImport):
        return f"{where}{exc}"
    if isinstance(exc, ModuleNotFoundError):
        return f"{where}no module named {exc.name!r}"
    return f"{where}{exc} ({type(exc).__name__})"


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, spec: Tool) -> None:
        self.tools[spec.name] = spec

    def add_module(self, module_name: str, modules: WorkspaceModules) -> None:
        """The ``@tool`` functions of a module: the workspace's own (through its loader)
        or an installed one."""
        try:
            module = modules.import_module(module_name)
        except Exception as exc:  # the workspace's own code: any error is its author's
            raise ConfigError(f"cannot import tool module {module_name!r} "
                              f"({import_problem(exc)}); fix it, or take it out of "
                              "[tools] modules in soloist.toml") from exc
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

    def problems(self) -> list[str]:
        """One sentence per compensation that names a tool this registry does not have."""
        return [
            f"tool {spec.name} is compensated by {spec.compensate.tool}, which is not a tool"
            for spec in self.tools.values()
            if spec.compensate is not None and spec.compensate.tool not in self.tools
        ]

    def __contains__(self, name: object) -> bool:
        return name in self.tools


# -- building the schema from a signature ----------------------------------------------


def _arguments_model(name: str, fn: Callable[..., Any]) -> tuple[type[BaseModel], dict[str, str]]:
    """A pydantic model of ``fn``'s arguments, and its field names -> parameter names.

    Fields get neutral names with the parameter as alias, so a parameter called ``json``
    or ``schema`` does not collide with BaseModel's own attributes.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tool {name}: cannot read the signature of {fn!r}: {exc}") from None
    hints = _hints(name, fn, signature)
    fields: dict[str, Any] = {}
    params: dict[str, str] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for index, (param_name, param) in enumerate(signature.parameters.items()):
        if param_name == _CALL or param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"tool {name}: parameter {param_name!r} is positional-only; "
                            "tool arguments are passed by name")
        default = ... if param.default is param.empty else param.default
        key = f"p{index}"
        fields[key] = (hints.get(param_name, Any), Field(default, alias=param_name))
        params[key] = param_name
    config = ConfigDict(extra=extra, title=name, populate_by_name=False)
    try:
        model = create_model(f"Args_{_identifier(name)}", __config__=config, **fields)
        model.model_json_schema(by_alias=True)
    except Exception as exc:  # an annotation pydantic cannot validate or describe
        raise TypeError(f"tool {name}: cannot build its argument schema: {exc}") from None
    return model, params


def _identifier(name: str) -> str:
    """``name`` as an identifier fragment (for generated class names)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _hints(name: str, fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """Resolved annotations of ``fn``'s parameters (not ``call``) and return value."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass  # resolve one by one, so an unresolvable ``call`` annotation does no harm
    target = inspect.unwrap(fn)
    namespace = getattr(target, "__globals__", None)
    if namespace is None:
        namespace = getattr(getattr(fn, "func", None), "__globals__", {})
    hints: dict[str, Any] = {}
    annotations = {p.name: p.annotation for p in signature.parameters.values()
                   if p.annotation is not p.empty}
    if signature.return_annotation is not signature.empty:
        annotations["return"] = signature.return_annotation
    for key, annotation in annotations.items():
        if key == _CALL:
            continue
        holder = types.SimpleNamespace(__annotations__={key: annotation})
        try:
            hints.update(typing.get_type_hints(holder, globalns=namespace,
                                               include_extras=True))
        except Exception as exc:
            if key == "return":
                continue  # no result schema rather than no tool
            raise TypeError(f"tool {name}: cannot resolve the type of parameter "
                            f"{key!r}: {exc}") from None
    return hints


def _result_schema(name: str, fn: Callable[..., Any]) -> dict[str, Any] | None:
    try:
        signature = inspect.signature(fn)
        hint = _hints(name, fn, signature).get("return", inspect.Signature.empty)
    except (TypeError, ValueError):
        return None
    if hint is inspect.Signature.empty or hint is None or hint is type(None):
        return None
    try:
        return TypeAdapter(hint).json_schema()
    except Exception as exc:
        raise TypeError(f"tool {name}: cannot build its result schema: {exc}") from None


def _takes_call(fn: Callable[..., Any]) -> bool:
    try:
        return _CALL in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _compensation(name: str, spec: CompensateSpec) -> ToolCompensation:
    if isinstance(spec, ToolCompensation):
        result = spec
    else:
        try:
            tool_name, args = spec
        except (TypeError, ValueError):
            raise TypeError(f"tool {name}: compensate is (tool name, args template)") from None
        result = ToolCompensation(str(tool_name), dict(args))
    for value in _strings(result.args):
        try:
            templating.check_template(value)
        except ValueError as exc:
            raise TypeError(f"tool {name}: compensation template {value!r} is invalid: {exc}"
                            ) from None
    return result


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


# -- error messages ----------------------------------------------------------------------


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _more(count: int) -> str:
    return f" (and {count} more problem{'s' if count > 1 else ''})" if count else ""


def _pydantic_message(name: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _path(first["loc"])
    more = _more(len(errors) - 1)
    if first["type"] == "missing":
        return f"tool {name} is missing the required argument {where!r}{more}."
    if first["type"] == "extra_forbidden":
        return f"tool {name} got an unexpected argument {where!r}{more}."
    message = str(first["msg"])
    message = message[:1].lower() + message[1:]
    if not where:
        return f"tool {name} got invalid arguments: {message}{more}."
    return (f"tool {name} got an invalid argument {where!r}: {message} "
            f"(got {_shown(first.get('input'))}){more}.")


def _jsonschema_message(name: str, error: jsonschema.ValidationError) -> str:
    where = _path(error.absolute_path)
    message = error.message.rstrip(".")
    if not where:
        return f"tool {name} got invalid arguments: {message}."
    return f"tool {name} got an invalid argument {where!r}: {message}."
