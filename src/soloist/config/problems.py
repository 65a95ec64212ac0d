"""A validation error of ``soloist.toml`` as one sentence: where, what, and the nearest
valid name (``soloist.toml:3: unknown key concurency in [worker]; did you mean
concurrency?``)."""

from __future__ import annotations

import datetime
import difflib
import json
import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from soloist.config.sections import Section
from soloist.config.toml import line_of

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_NOTHING = object()


@dataclass(frozen=True)
class _Names:
    """Any name goes here (a dict's key); its value is ``of``."""

    of: Any


@dataclass(frozen=True)
class _Tagged:
    """One of several models, picked by the value of the key ``by`` (a discriminated
    union: ``kind`` of ``[connectors.NAME]``); pydantic puts the value in the error's
    location, between the table and its key."""

    by: str
    models: dict[str, type[Section]]

    def tags(self) -> str:
        return ", ".join(self.models)


def _tagged(union: Any, by: str) -> _Tagged:
    models: dict[str, type[Section]] = {}
    for model in get_args(union):
        for tag in get_args(model.model_fields[by].annotation):
            models[tag] = model
    return _Tagged(by, models)


def _inner(annotation: Any) -> Any:
    """The model (or ``_Names``, ``_Tagged``) a field's value is, if it is one."""
    origin = get_origin(annotation)
    if origin is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, FieldInfo) and isinstance(meta.discriminator, str):
                return _tagged(get_args(annotation)[0], meta.discriminator)
        return _inner(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _inner(arg)
            if found is not None:
                return found
        return None
    if origin is dict:
        return _Names(_inner(get_args(annotation)[1]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@dataclass(frozen=True)
class _Place:
    """Where an error's location leads: its path as written in the file, what holds its
    last name, what is there, and the union the holder was picked from (if it was)."""

    path: list[str]
    holder: Any
    there: Any
    union: _Tagged | None


def _walk(root: type[Section], loc: tuple[int | str, ...]) -> _Place:
    path: list[str] = []
    here: Any = root
    holder: Any = root
    union: _Tagged | None = None  # the one ``here`` was picked from
    holder_union: _Tagged | None = None
    for part in loc:
        if isinstance(part, int) or part == "[key]":
            continue
        if isinstance(here, _Tagged) and part in here.models:
            union, here = here, here.models[part]  # the tag, not a key of the file
            continue
        if isinstance(here, type) and issubclass(here, Section) and part in here.inlined:
            here = _inner(here.model_fields[part].annotation)
            continue
        holder, holder_union, union = here, union, None
        if isinstance(here, type) and issubclass(here, Section):
            field = here.model_fields.get(part)
            here = _inner(field.annotation) if field is not None else None
        elif isinstance(here, _Names):
            here = here.of
        else:
            here = None
        path.append(part)
    return _Place(path, holder, here, holder_union)


def _known(holder: Any) -> list[str]:
    if isinstance(holder, type) and issubclass(holder, Section):
        return [name for name in holder.model_fields if name not in holder.inlined]
    return []


def shown(value: Any) -> str:
    """A value as it is written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return repr(value)


def _tables(model: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every table a model knows, by path (not inside tables of names the user picks)."""
    if not (isinstance(model, type) and issubclass(model, Section)):
        return []
    out: list[tuple[str, ...]] = []
    for name in _known(model):
        inner = _inner(model.model_fields[name].annotation)
        if inner is not None:
            out.append((*path, name))
            out.extend(_tables(inner, (*path, name)))
    return out


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _written(name: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted."""
    return name if _BARE.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _table(path: list[str]) -> str:
    return "[" + ".".join(map(_written, path)) + "]"


_KINDS = {
    "bool_type": "true or false", "int_type": "a whole number", "int_from_float":
    "a whole number", "float_type": "a number", "string_type": "a string",
    "list_type": "a list", "tuple_type": "a list", "dict_type": "a table",
    "model_type": "a table", "model_attributes_type": "a table",
    "finite_number": "a finite number",
}


def requirement(error: ErrorDetails) -> str:
    """What the value must be ("must be at most 1024"), from one pydantic error."""
    return _what(error) or error["msg"][:1].lower() + error["msg"][1:]


def _what(error: ErrorDetails) -> str | None:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}"
    if kind == "greater_than":
        return f"must be above {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx['ge'])}"
    if kind == "less_than":
        return f"must be below {_number(ctx['lt'])}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx['le'])}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    return None


def _tag_of(model: Any, union: _Tagged) -> str:
    return next(tag for tag, each in union.models.items() if each is model)


def _trailing_ints(loc: tuple[int | str, ...]) -> int:
    count = 0
    for part in reversed(loc):
        if not isinstance(part, int):
            break
        count += 1
    return count


def sentence(error: ErrorDetails, *, root: type[Section], text: str | None = None,
             file: str | None = None, base: tuple[str, ...] = ()) -> str:
    """``error`` (of validating ``root`` from ``text``, read from ``file``) in one sentence;
    ``base`` is where ``root`` sits in the file when it is not the whole of it."""
    loc = tuple(error["loc"])
    place = _walk(root, loc)
    holder, there = place.holder, place.there
    path = [*base, *place.path]
    kind, value = error["type"], error.get("input")
    # a table of a union without a valid tag: what it holds there, if anything
    tagged = there if isinstance(there, _Tagged) and kind.startswith("union_tag_") else None
    tag = value.get(tagged.by, _NOTHING) if tagged and isinstance(value, dict) else _NOTHING
    located = path if tag is _NOTHING or tagged is None else [*path, tagged.by]
    line = line_of(text, tuple(located)) if text is not None and path else None
    where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
    name, table = (path[-1], path[:-1]) if path else ("", [])
    at = "".join(f"[{part}]" for part in loc[len(loc) - _trailing_ints(loc):])
    key = f"{_table(table)} {_written(name)}{at}" if table else f"{_written(name)}{at}"
    if tagged is not None:
        if tag is _NOTHING:
            return f"{where}{_table(path)} {tagged.by} is required: one of {tagged.tags()}"
        return (f"{where}{_table(path)} {tagged.by} must be one of {tagged.tags()}, "
                f"not {shown(tag)}")
    if kind == "extra_forbidden":
        known = _known(holder)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        union = place.union
        of_kind = ""
        if union is not None:  # a table whose keys depend on its kind: say which
            of_kind = f" ({union.by} {_tag_of(holder, union)})"
            # the kind, its own keys, then those every kind has
            common = set.intersection(*(set(m.model_fields) for m in union.models.values()))
            known = [union.by, *(k for k in known if k not in common),
                     *(k for k in known if k in common and k != union.by)]
            others = [tag for tag, model in union.models.items()
                      if model is not holder and name in model.model_fields]
            if others and not close and not isinstance(value, dict):
                kinds = " or ".join(others)
                return (f"{where}unknown key {_written(name)} in {_table(table)}{of_kind}; "
                        f"{_written(name)} is a setting of {union.by} {kinds}")
        if isinstance(value, dict):
            suggestion = [*table, close[0]] if close else None
            if suggestion is None:  # perhaps a table of another level: [search]
                elsewhere = {p[-1]: p for p in _tables(root) if len(p) > 1}
                near = difflib.get_close_matches(name, list(elsewhere), n=1, cutoff=0.8)
                suggestion = [*base, *elsewhere[near[0]]] if near and not table else None
            tables = [k for k in known if _inner(holder.model_fields[k].annotation)]
            hint = (f"did you mean {_table(suggestion)}?" if suggestion else
                    "known: " + ", ".join(_table([*table, k]) for k in tables) if tables
                    else f"{_table(table)}{of_kind} has no tables inside it")
            return f"{where}unknown table {_table(path)}; {hint}"
        hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(known)
        inside = f"in {_table(table)}{of_kind}" if table else "outside any table"
        return f"{where}unknown key {_written(name)} {inside}; {hint}"
    if kind == "missing":
        return f"{where}{key} is required"
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
        # a model's own check (one setting against another) is about its whole table
        if not path or (isinstance(there, type) and isinstance(value, dict)):
            return f"{where}{_table(path)} {message}" if path else f"{where}{message}"
        return f"{where}{key}: {message}"
    what = requirement(error)
    return f"{where}{key} {what}, not {shown(value)}"
