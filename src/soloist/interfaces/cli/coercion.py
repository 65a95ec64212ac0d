"""Plain conversion of the CLI's plain options, so a command does not start pydantic.

Typer (0.2x) converts every parameter through a pydantic ``TypeAdapter``: importing
pydantic and building the adapters costs about 0.1 s per command, half of what
``soloist runs`` may take. Every Soloist option is a ``str``, ``int``, ``float``,
``bool`` or plain ``Path`` (or one of them or None), which need no schema; those are
converted here, and everything else (ranges, choices, lists, files, checked paths) still
goes to Typer's own converter. Where Typer does not look as expected, nothing is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union, get_args, get_origin

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
_PLAIN = (str, int, float, bool, Path)
# ParameterInfo settings whose default means "no check": anything else goes to Typer.
_NEUTRAL = {"parser": None, "click_type": None, "min": None, "max": None, "clamp": False,
            "formats": None, "exists": False, "file_okay": True, "dir_okay": True,
            "writable": False, "resolve_path": False, "allow_dash": False,
            "path_type": None}


def _plain_type(annotation: Any) -> type | None:
    """``str`` for ``str`` or ``str | None``...; None for anything that needs Typer."""
    if annotation in _PLAIN:
        return annotation  # type: ignore[no-any-return]
    origin = get_origin(annotation)
    if origin is Union or (origin is not None and getattr(origin, "__name__", "") ==
                           "UnionType"):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _PLAIN and len(get_args(annotation)) == 2:
            return args[0]  # type: ignore[no-any-return]
    return None


def _convert(kind: type, value: Any) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError
    if kind is int:
        return int(text, 10)
    return kind(text)


def install() -> None:
    """Route Typer's conversion of plain options through :func:`_convert`."""
    try:
        import typer.core as core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:
        return
    build = getattr(core, "build_runtime_param", None)
    if build is None or getattr(build, "_soloist_plain", False):
        return

    class PlainRuntimeParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = _plain_type(self.annotation)
            assert kind is not None
            try:
                return _convert(kind, value)
            except ValueError:
                label = {int: "integer", float: "number", bool: "boolean"}.get(kind,
                                                                              kind.__name__)
                raise BadParameter(f"{value!r} is not a valid {label}.", ctx=ctx,
                                   param=param) from None

    def build_runtime_param(descriptor: Any) -> Any:
        info = getattr(descriptor, "parameter_info", None)
        annotation = getattr(descriptor, "annotation", None)
        plain = (
            info is not None
            and getattr(descriptor, "file_annotation", None) is None
            and _plain_type(annotation) is not None
            and all(getattr(info, name, default) == default
                    for name, default in _NEUTRAL.items())
        )
        if not plain:
            return build(descriptor)
        return PlainRuntimeParam(parameter_info=info, annotation=annotation)  # type: ignore[arg-type]

    build_runtime_param._soloist_plain = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build_runtime_param)  # noqa: B010
