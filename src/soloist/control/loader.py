"""Read a workspace folder into validated definitions, or report every problem in it.

Each problem reads ``relative/path.yaml:LINE:COLUMN: where: what is wrong`` and points at
the offending key or value. All files are read and checked before anything is returned,
so a deploy sees either the whole workspace or a list of everything to fix.
"""

from __future__ import annotations

import difflib
import graphlib
import re
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from soloist.control import checks, cron, templating
from soloist.control.agents import Agent
from soloist.control.checks import ToolNames
from soloist.control.modules import WorkspaceModules
from soloist.control.playbooks import Playbook
from soloist.control.policies import Policies
from soloist.control.python_defs import load_python
from soloist.control.safe_yaml import (
    MAX_FILE_BYTES,
    LimitedLoader,
    Refused,
    too_big,
    unreadable,
)
from soloist.errors import DefinitionError

Loc = tuple[str | int, ...]
_PLACE = re.compile(r"^(.+?):(\d+):(\d+): ")
M = TypeVar("M", bound=BaseModel)
N = TypeVar("N", Playbook, Agent)


@dataclass(frozen=True)
class Definitions:
    """A whole workspace, valid: what a deploy records as new versions."""

    playbooks: dict[str, Playbook]
    agents: dict[str, Agent]
    policies: Policies
    sources: dict[tuple[str, str], str]  # (kind, name) -> file path relative to the root


@dataclass
class _Doc:
    """One parsed file: its data and where each value and key starts."""

    path: str
    data: Any
    values: dict[Loc, Mark]
    keys: dict[Loc, Mark]
    problems: list[tuple[int, int, str]]
    parsed: bool = False

    def report(
        self, loc: Loc, message: str, *, at_key: bool = False, where: Loc | None = None
    ) -> None:
        # Fall back to the nearest enclosing node: merge keys and aliases leave gaps.
        marks = [self.keys.get(loc)] if at_key else []
        marks += [self.values.get(loc[:end]) for end in range(len(loc), -1, -1)]
        mark = next((m for m in marks if m is not None), None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        shown = ".".join(str(part) for part in (loc if where is None else where))
        text = f"{self.path}:{line}:{column}: " + (f"{shown}: " if shown else "") + message
        self.problems.append((line, column, text))

    def messages(self) -> list[str]:
        return [text for _, _, text in sorted(self.problems)]


def load_definitions(root: Path, tools: ToolNames | None = None,
                     modules: WorkspaceModules | None = None) -> Definitions:
    """Every playbook, agent and the policies under ``root``; DefinitionError lists all problems.

    Given the workspace's ``tools``, playbooks are also checked for what would only fail
    in a run: unknown tools and functions, templates reading what they will not have, an
    agent step's tools beyond its grants (see :mod:`soloist.control.checks`). ``modules``
    imports the workspace's Python (its own loader; by default one used for this call).
    """
    if not root.is_dir():
        raise DefinitionError([f"{root}: not a workspace folder"])
    if modules is not None:
        return _definitions(root, tools, modules)
    modules = WorkspaceModules(root)
    try:
        return _definitions(root, tools, modules)
    finally:
        modules.unload()


def _definitions(root: Path, tools: ToolNames | None, modules: WorkspaceModules
                 ) -> Definitions:
    problems: list[str] = []
    sources: dict[tuple[str, str], str] = {}
    docs: dict[str, _Doc] = {}
    failed: list[_Doc] = []
    failed_agents: list[_Doc] = []
    playbooks = _load_named(root, "playbook", Playbook, problems, sources, docs, failed)
    agent_docs: dict[str, _Doc] = {}
    agents = _load_named(root, "agent", Agent, problems, sources, agent_docs, failed_agents)
    _add_python(modules, "playbook", Playbook, playbooks, problems, sources)
    _add_python(modules, "agent", Agent, agents, problems, sources)
    policies: Policies | None = Policies()  # no policies.yaml: no rules
    if (root / "policies.yaml").is_file():
        _, policies = _load_file(root / "policies.yaml", "policies.yaml", Policies, problems)
        sources["policies", "policies"] = "policies.yaml"
    problems.extend(_unknown_agents(playbooks, agents, docs))
    if tools is not None:
        # Files with other problems too, so that one deploy lists everything to fix.
        for doc in [*docs.values(), *failed]:
            _add_placed(problems, doc, doc.path,
                        checks.playbook_problems(doc.data, agents, tools, modules))
        for doc in [*agent_docs.values(), *failed_agents]:
            _add_placed(problems, doc, doc.path, checks.agent_problems(doc.data, tools))
        for name, playbook in playbooks.items():
            if name not in docs:  # written in Python
                _add_placed(problems, None, sources["playbook", name], checks.playbook_problems(
                    playbook.model_dump(), agents, tools, modules))
        for name, agent in agents.items():
            if name not in agent_docs:
                _add_placed(problems, None, sources["agent", name],
                            checks.agent_problems(agent.model_dump(), tools))
    if problems or policies is None:
        raise DefinitionError(_in_order(problems))
    return Definitions(playbooks=playbooks, agents=agents, policies=policies, sources=sources)


def _in_order(problems: list[str]) -> list[str]:
    """Each file's problems by line and column, files in the order they were read."""
    files: dict[str, int] = {}

    def key(problem: str) -> tuple[int, int, int]:
        found = _PLACE.match(problem)
        path, line, column = found.groups() if found else (problem, "0", "0")
        return files.setdefault(path, len(files)), int(line), int(column)

    return sorted(problems, key=key)


def parse_yaml(text: str, path: str) -> _Doc:
    """One YAML file's data and where each key and value starts; its syntax problems are
    in ``messages()``, and ``report(loc, message)`` adds one at its place."""
    return _parse(text, path)


def load_playbook_text(text: str, path: str) -> Playbook:
    """One playbook from YAML text; ``path`` names the file in problems."""
    return load_text(text, path, Playbook)


def load_text(text: str, path: str, model: type[M]) -> M:
    """One definition of ``model`` (Playbook, Agent, Policies) from YAML text."""
    doc, loaded = _load_text(text, path, model)
    if loaded is None:
        raise DefinitionError(doc.messages())
    return loaded


def _unknown_agents(playbooks: dict[str, Playbook], agents: dict[str, Agent],
                    docs: dict[str, _Doc]) -> list[str]:
    """Agent steps must name agents of this workspace (checked across files)."""
    found: list[str] = []
    for name, playbook in playbooks.items():
        doc = docs.get(name)
        for index, step in enumerate(playbook.steps):
            for key in ("agent", "verifier"):
                wanted = getattr(step, key)
                if wanted is None or wanted in agents:
                    continue
                known = ", ".join(sorted(agents)) or "none"
                message = f"no agent named {wanted!r} in agents/ (known: {known})"
                if doc is None:
                    found.append(f"{name}: steps.{index}.{key}: {message}")
                else:
                    doc.problems.clear()
                    doc.report(("steps", index, key), message)
                    found.extend(doc.messages())
    return found


def _add_placed(problems: list[str], doc: _Doc | None, relative: str,
                found: Iterable[tuple[Loc, str]]) -> None:
    """Add problems found across files, at their place in the definition's file, once:
    a template's syntax error was already reported with its file."""
    known = set(problems)
    if doc is None:  # written in Python: no lines to point at
        placed = [f"{relative}: {'.'.join(map(str, loc))}: {message}" for loc, message in found]
    else:
        doc.problems.clear()
        for loc, message in found:
            doc.report(loc, message)
        placed = doc.messages()
    problems.extend(p for p in placed if p not in known)


def _load_named(
    root: Path, kind: str, model: type[N], problems: list[str],
    sources: dict[tuple[str, str], str], docs: dict[str, _Doc] | None = None,
    failed: list[_Doc] | None = None,
) -> dict[str, N]:
    found: dict[str, N] = {}
    for file in _yaml_files(root / f"{kind}s"):
        relative = file.relative_to(root).as_posix()
        doc, loaded = _load_file(file, relative, model, problems)
        if doc is not None and loaded is None and isinstance(doc.data, dict):
            if failed is not None:
                failed.append(doc)
        if doc is None or loaded is None:
            continue
        if (kind, loaded.name) in sources:
            other = sources[kind, loaded.name]
            doc.report(("name",), f"{kind} {loaded.name!r} is also defined in {other}")
            problems.extend(doc.messages())
            continue
        sources[kind, loaded.name] = relative
        found[loaded.name] = loaded
        if docs is not None:
            docs[loaded.name] = doc
    return found


def _add_python(
    modules: WorkspaceModules, kind: str, model: type[N], found: dict[str, N], problems: list[str],
    sources: dict[tuple[str, str], str],
) -> None:
    """Definitions written in Python join the YAML ones (one model, one registry)."""
    for loaded, relative in load_python(modules, f"{kind}s", model, problems):
        if (kind, loaded.name) in sources:
            problems.append(f"{relative}:1:1: {kind} {loaded.name!r} is also defined in "
                            f"{sources[kind, loaded.name]}")
            continue
        sources[kind, loaded.name] = relative
        found[loaded.name] = loaded


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = [*folder.glob("*.yaml"), *folder.glob("*.yml")]
    # Editors and sync tools leave hidden copies next to real files; they are not definitions.
    return sorted(f for f in files if f.is_file() and not f.name.startswith("."))


def _load_file(
    file: Path, relative: str, model: type[M], problems: list[str]
) -> tuple[_Doc | None, M | None]:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        problems.append(f"{relative}:1:1: {too_big(size)}")
        return None, None
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(f"{relative}:1:1: the file is not UTF-8 text")
        return None, None
    doc, loaded = _load_text(text, relative, model)
    problems.extend(doc.messages())
    return doc, loaded


def _load_text(text: str, path: str, model: type[M]) -> tuple[_Doc, M | None]:
    doc = _parse(text, path)
    if not doc.parsed:
        return doc, None
    if not isinstance(doc.data, dict):
        doc.report((), "the file must hold a mapping of keys such as name: and steps:")
        return doc, None
    loaded: M | None = None
    try:
        loaded = model.model_validate(doc.data)
    except ValidationError as exc:
        _report_validation(doc, model, exc)
    for loc, message in _extra_checks(model, doc.data):
        doc.report(loc, message)
    return doc, (loaded if not doc.problems else None)


def _parse(text: str, path: str) -> _Doc:
    doc = _Doc(path, None, {}, {}, [])
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8")) > MAX_FILE_BYTES:
        doc.report((), too_big(len(text.encode("utf-8"))))
        return doc
    loader: LimitedLoader | None = None
    try:
        loader = LimitedLoader(text)
        node = loader.get_single_node()
        if node is None:
            doc.report((), "the file is empty")
            return doc
        _walk(doc, node, ())
        doc.data = loader.construct_document(node)
        doc.parsed = True
    except Refused as exc:
        line, column = exc.mark.line + 1, exc.mark.column + 1
        doc.problems.append((line, column, f"{path}:{line}:{column}: {exc.message}"))
    except yaml.reader.ReaderError as exc:
        line, column, message = unreadable(text, exc)
        doc.problems.append((line, column, f"{path}:{line}:{column}: {message}"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "not valid YAML"
        if exc.problem == "but found another document":
            problem = "the file holds more than one YAML document"
        elif exc.problem and exc.context:
            problem = f"{problem} ({exc.context})"
        doc.problems.append((line, column, f"{path}:{line}:{column}: YAML syntax: {problem}"))
    except yaml.YAMLError as exc:
        doc.problems.append((1, 1, f"{path}:1:1: YAML syntax: {exc}"))
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _walk(doc: _Doc, node: Node, loc: Loc) -> None:
    """Record where every key and value starts (the loader bounded how far this goes)."""
    doc.values[loc] = node.start_mark
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value == "<<":
                continue  # complex and merge keys: problems fall back to the mapping
            child = (*loc, key_node.value)
            repeated = child in doc.keys
            doc.keys[child] = key_node.start_mark
            if repeated:
                doc.report(child, f"key {key_node.value!r} appears twice", at_key=True)
            _walk(doc, value_node, child)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(doc, item, (*loc, index))


def _report_validation(doc: _Doc, model: type[BaseModel], exc: ValidationError) -> None:
    # A union (a trigger) fails once per member; keep only the member the data means.
    chosen: dict[Loc, str | None] = {}
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        tag_at = _tag_index(model, loc)
        if tag_at is None:
            _report_error(doc, model, loc, error, None)
            continue
        prefix, tag = loc[:tag_at], str(loc[tag_at])
        if prefix not in chosen:
            chosen[prefix] = _pick_member(model, prefix, _data_at(doc.data, prefix))
            if chosen[prefix] is None:
                keys = ", ".join(next(iter(m.model_fields)) for m in _models_at(model, prefix))
                doc.report(prefix, f"expected a mapping with one of the keys {keys}")
        if chosen[prefix] == tag:
            _report_error(doc, model, prefix + loc[tag_at + 1 :], error, tag)


def _report_error(doc: _Doc, model: type[BaseModel], loc: Loc, error: Any, tag: str | None) -> None:
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        fields = list(_model_at(model, loc[:-1], tag).model_fields)
        close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(fields)}"
        doc.report(loc, f"unknown key {key!r}{hint}", at_key=True, where=loc[:-1])
        return
    if kind == "missing":
        doc.report(loc[:-1], f"missing required key {str(loc[-1])!r}")
        return
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if not loc and model is Playbook:
        loc, where, message = _locate_graph_error(doc.data, message)
        doc.report(loc, message, where=where)
        return
    value = error.get("input")
    if (
        kind != "value_error"
        and isinstance(value, str | int | float | bool)
        and len(repr(value)) < 60
    ):
        message += f" (got {value!r})"
    doc.report(loc, message[:1].lower() + message[1:])


def _locate_graph_error(data: Any, message: str) -> tuple[Loc, Loc, str]:
    """Where a playbook-wide check (step ids, needs) failed: value, field and message."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list):
        return (), (), message
    ids = [step.get("id") if isinstance(step, dict) else None for step in steps]
    listed = [step.get("needs") if isinstance(step, dict) else None for step in steps]
    needs = [n if isinstance(n, list) else ids[i - 1 : i] for i, n in enumerate(listed)]
    unknown = re.match(r"step '(.+)' needs (?:'(.+)', which is not a step|itself)", message)
    if unknown and unknown.group(1) in ids:
        index = ids.index(unknown.group(1))
        wanted = unknown.group(2) or unknown.group(1)
        field: Loc = ("steps", index, "needs")
        at = needs[index].index(wanted) if wanted in needs[index] else None
        return ((*field, at) if at is not None else field), field, message
    twice = re.match(r"step id '(.+)' is used twice", message)
    if twice and twice.group(1) in ids:
        index = len(ids) - 1 - ids[::-1].index(twice.group(1))
        return ("steps", index, "id"), ("steps", index, "id"), message
    try:
        graphlib.TopologicalSorter(dict(zip(ids, needs, strict=True))).prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # reversed, so that each step needs the next
        where: Loc = ("steps", ids.index(cycle[0]), "needs")
        return where, where, f"{message}: {' needs '.join(map(str, cycle))}"
    return ("steps",), ("steps",), message


def _tag_index(model: type[BaseModel], loc: Loc) -> int | None:
    """Where pydantic named a union member in ``loc`` (it does so by class name), if it did."""
    for index, part in enumerate(loc):
        members = [m.__name__ for m in _models_at(model, loc[:index])]
        if len(members) > 1 and part in members:
            return index
    return None


def _data_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _pick_member(model: type[BaseModel], loc: Loc, data: Any) -> str | None:
    """The union member the data means: the one whose first field is a key of it."""
    members = _models_at(model, loc) if isinstance(data, dict) else []
    return next((m.__name__ for m in members if next(iter(m.model_fields)) in data), None)


def _model_at(model: type[BaseModel], loc: Loc, tag: str | None) -> type[BaseModel]:
    members = _models_at(model, loc)
    return next((m for m in members if m.__name__ == tag), members[0] if members else model)


def _models_at(model: type[BaseModel], loc: Loc) -> list[type[BaseModel]]:
    """The model classes at ``loc``: several where the field is a union of models."""
    return [
        m for m in _annotation_at(model, loc) if isinstance(m, type) and issubclass(m, BaseModel)
    ]


def _annotation_at(model: type[BaseModel], loc: Loc) -> list[Any]:
    current: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for candidate in current:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                field = candidate.model_fields.get(str(part))
                nxt.extend(_flatten(field.annotation) if field else [])
            elif get_origin(candidate) is list and isinstance(part, int):
                nxt.extend(_flatten(get_args(candidate)[0]))
        current = nxt
    return current


def _flatten(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]


def _extra_checks(model: type[BaseModel], data: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """What pydantic cannot see: cron schedules, zones, templates and JSON Schemas."""

    def expression(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
        return _problem(templating.check_expression, value, loc, "expression")

    def template(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
        return _problem(templating.check_template, value, loc, "template")

    if model is Playbook:
        yield from checks.schema_problems(data.get("inputs"), ("inputs",))
        for i, trigger in _items(data.get("triggers")):
            loc: Loc = ("triggers", i)
            yield from _problem(cron.check_expression, trigger.get("cron"), (*loc, "cron"))
            yield from _problem(cron.check_timezone, trigger.get("timezone"), (*loc, "timezone"))
            yield from expression(trigger.get("when"), (*loc, "when"))
            yield from template(trigger.get("inputs"), (*loc, "inputs"))
        for i, step in _items(data.get("steps")):
            loc = ("steps", i)
            yield from template(step.get("args"), (*loc, "args"))
            yield from template(step.get("task"), (*loc, "task"))
            gate = step.get("gate")
            if isinstance(gate, dict):
                yield from template(gate.get("message"), (*loc, "gate", "message"))
            yield from expression(step.get("when"), (*loc, "when"))
            yield from expression(step.get("check"), (*loc, "check"))
            compensate = step.get("compensate")
            if isinstance(compensate, dict):
                yield from template(compensate.get("args"), (*loc, "compensate", "args"))
            fallback = step.get("fallback")
            if isinstance(fallback, dict):
                yield from template(fallback.get("args"), (*loc, "fallback", "args"))
            yield from checks.schema_problems(step.get("output"), (*loc, "output"))
            wait = step.get("wait")
            if isinstance(wait, dict):
                yield from expression(wait.get("when"), (*loc, "wait", "when"))
        for i, stop in _items(data.get("stop_on")):
            yield from expression(stop.get("when"), ("stop_on", i, "when"))
    elif model is Policies:
        for i, rule in _items(data.get("rules")):
            match = rule.get("match")
            if isinstance(match, dict):
                yield from expression(match.get("when"), ("rules", i, "match", "when"))


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        yield from ((i, item) for i, item in enumerate(value) if isinstance(item, dict))


def _problem(
    check: Callable[[str], object], value: Any, loc: Loc, what: str = ""
) -> Iterator[tuple[Loc, str]]:
    """``check`` every string in ``value``, however deeply nested."""
    if isinstance(value, str):
        try:
            check(value)
        except ValueError as exc:
            yield loc, f"invalid {what} {value!r}: {exc}" if what else str(exc)
    elif isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _problem(check, item, (*loc, key), what)
