"""Deploy-time checks: what a playbook names must exist, so it fails at deploy, not in a run.

The loader checks each file on its own (syntax, keys, types); these checks look across the
workspace: the tools a step, a compensation or an agent's grant names (and the tool that
undoes each), the Python functions a step names, the names and steps its templates read,
and an agent step's ``tools`` against its agent's grants. Each problem is ``(location,
message)`` for the loader to place at the file, line and column of the offending value.

Which tools exist is known above the control plane (the execution plane builds the tool
registry), so the caller passes a :class:`ToolNames`; control never imports execution.

:func:`connector_problems` checks soloist.toml's connectors against the secret store: the
file itself was checked when the workspace opened, but whether a ``secret:NAME`` is set is
known only with the database, so a deploy says it before a run needs it.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, SchemaError

from soloist.config import CONFIG_FILE
from soloist.config.connectors import ConnectorBase
from soloist.config.references import secret_name
from soloist.config.toml import line_of
from soloist.control import templating
from soloist.control.agents import Agent
from soloist.control.modules import WorkspaceModules
from soloist.control.playbooks import topological_order

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

# The names each templated field sees at run time (execution/steps.py, scheduler.py).
STEP_NAMES = frozenset({"inputs", "steps", "run"})
COMPENSATE_NAMES = STEP_NAMES | {"step"}
CHECK_NAMES = frozenset({"output"})
CRON_NAMES = frozenset({"fire_time"})
EVENT_NAMES = frozenset({"event"})
#: A wait's and a stop's ``when``: the event, and the run it may concern.
WAIT_NAMES = frozenset({"event", "run", "inputs"})
_SHOWN_TOOLS = 12  # known tools listed in a message before "..."


@dataclass(frozen=True)
class ToolNames:
    """The tools a workspace offers at run time, as far as a deploy can know them.

    ``names`` are the registered tools (built-ins, memory tools, the workspace's ``@tool``
    modules). MCP servers list their tools only once started, so for ``mcp.SERVER.TOOL``
    only the server is checked against ``mcp_servers``, the servers configured.
    """

    names: Collection[str]
    mcp_servers: Collection[str] = ()
    compensated_by: Mapping[str, str] = field(default_factory=dict)  # tool -> its undoing tool

    def problem(self, name: str) -> str | None:
        """Why ``name`` is no tool here, or None when it is one."""
        if name in self.names:
            undo = self.compensated_by.get(name)
            if undo is not None and undo not in self.names:
                return (f"tool {name!r} is compensated by {undo!r}, which is not a tool; "
                        f"fix the compensate= of {name}'s @tool")
            return None
        if name.startswith("mcp."):
            server, _, remote = name.removeprefix("mcp.").partition(".")
            if server in self.mcp_servers and remote:
                return None
            if server in self.mcp_servers:
                return f"{name!r} names no tool of MCP server {server!r}; write mcp.{server}.TOOL"
            configured = ", ".join(sorted(self.mcp_servers)) or "none"
            return (f"no MCP server named {server!r} in soloist.toml's [mcp.servers] "
                    f"(configured: {configured})")
        close = difflib.get_close_matches(name, list(self.names), n=1, cutoff=0.6)
        if close:
            return f"no tool named {name!r} (did you mean {close[0]!r}?)"
        known = sorted(self.names)
        shown = ", ".join(known[:_SHOWN_TOOLS]) + (", ..." if len(known) > _SHOWN_TOOLS else "")
        return f"no tool named {name!r} (known: {shown or 'none'})"


def playbook_problems(data: Mapping[str, Any], agents: Mapping[str, Agent], tools: ToolNames,
                      modules: WorkspaceModules) -> Iterator[Problem]:
    """Everything in a playbook that would only fail once a run reaches it.

    ``data`` is the playbook as written (a YAML file's mapping, or a model's dump), so a
    file with other mistakes is checked too and a deploy reports every problem at once;
    what is malformed here was reported by the loader and is passed over.
    """
    steps = [step if isinstance(step, dict) else {} for step in _list(data.get("steps"))]
    graph = _Graph(steps)
    python = _Modules(modules)
    yield from schema_problems(data.get("inputs"), ("inputs",))  # for playbooks in Python
    for index, step in enumerate(steps):
        loc: Loc = ("steps", index)
        yield from schema_problems(step.get("output"), (*loc, "output"))
        step_id = step.get("id") if isinstance(step.get("id"), str) else None
        if isinstance(step.get("tool"), str):
            yield from _tool(tools, step["tool"], (*loc, "tool"))
        if isinstance(step.get("python"), str):
            yield from _python(python, step["python"], (*loc, "python"))
        compensate = step.get("compensate")
        if isinstance(compensate, dict):
            if isinstance(compensate.get("tool"), str):
                yield from _tool(tools, compensate["tool"], (*loc, "compensate", "tool"))
            if isinstance(compensate.get("python"), str):
                yield from _python(python, compensate["python"], (*loc, "compensate", "python"))
            yield from _templates(compensate.get("args"), (*loc, "compensate", "args"),
                                  COMPENSATE_NAMES, graph, step_id, itself=True)
        fallback = step.get("fallback")
        if isinstance(fallback, dict):
            if isinstance(fallback.get("python"), str):
                yield from _python(python, fallback["python"], (*loc, "fallback", "python"))
            yield from _templates(fallback.get("args"), (*loc, "fallback", "args"), STEP_NAMES,
                                  graph, step_id)
        wanted = step.get("tools")
        agent = step.get("agent")
        if isinstance(wanted, list) and isinstance(agent, str) and agent in agents:
            yield from _narrowed(wanted, agents[agent], tools, loc)
        yield from _templates(step.get("args"), (*loc, "args"), STEP_NAMES, graph, step_id)
        yield from _templates(step.get("task"), (*loc, "task"), STEP_NAMES, graph, step_id)
        gate = step.get("gate")
        if isinstance(gate, dict):
            yield from _templates(gate.get("message"), (*loc, "gate", "message"), STEP_NAMES,
                                  graph, step_id)
        yield from _templates(step.get("when"), (*loc, "when"), STEP_NAMES, graph, step_id,
                              expression=True)
        yield from _templates(step.get("check"), (*loc, "check"), CHECK_NAMES, graph, step_id,
                              expression=True)
        wait = step.get("wait")
        if isinstance(wait, dict):
            yield from _templates(wait.get("when"), (*loc, "wait", "when"), WAIT_NAMES, graph,
                                  None, expression=True)
    for index, stop in enumerate(_list(data.get("stop_on"))):
        if isinstance(stop, dict):
            yield from _templates(stop.get("when"), ("stop_on", index, "when"), WAIT_NAMES,
                                  graph, None, expression=True)
    for index, trigger in enumerate(_list(data.get("triggers"))):
        if not isinstance(trigger, dict):
            continue  # "manual"
        loc = ("triggers", index)
        names = CRON_NAMES if "cron" in trigger else EVENT_NAMES
        yield from _templates(trigger.get("inputs"), (*loc, "inputs"), names, graph, None)
        yield from _templates(trigger.get("when"), (*loc, "when"), names, graph, None,
                              expression=True)


def agent_problems(data: Mapping[str, Any], tools: ToolNames) -> Iterator[Problem]:
    """An agent's grants that name no tool (a typo would leave the agent without it).

    A glob may match tools yet to come and is checked only for its MCP server, if any.
    """
    for i, grant in enumerate(_list(data.get("tools"))):
        if not isinstance(grant, str):
            continue
        if grant.startswith("mcp."):
            server = grant.removeprefix("mcp.").partition(".")[0]
            problem = tools.problem(f"mcp.{server}.*")
        elif not any(ch in grant for ch in "*?["):
            problem = tools.problem(grant)
        else:
            continue
        if problem is not None:
            yield ("tools", i), problem


def connector_problems(connectors: Mapping[str, ConnectorBase], secrets: Collection[str],
                       text: str | None = None, file: str = CONFIG_FILE) -> Iterator[str]:
    """Each ``secret:NAME`` a connector refers to that is not among ``secrets`` (the names
    set), as one sentence at its line of ``text`` (the file's content) when it is given."""
    for name, connector in connectors.items():
        for key, reference in connector.secrets().items():
            secret = secret_name(reference)
            if secret is None or secret in secrets:
                continue
            line = line_of(text, ("connectors", name, key)) if text is not None else None
            where = f"{file}:{line}: " if line else f"{file}: "
            yield (f"{where}[connectors.{name}] {key} refers to secret {secret}, which is not "
                   f"set; `soloist secret set {secret}`")


def schema_problems(schema: Any, loc: Loc) -> Iterator[Problem]:
    """``schema`` checked against the JSON Schema metaschema, at the offending keyword."""
    if not isinstance(schema, dict):
        return  # the model refuses a schema that is not a mapping
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        yield (*loc, *exc.absolute_path), f"not a valid JSON Schema: {exc.message}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _tool(tools: ToolNames, name: str, loc: Loc) -> Iterator[Problem]:
    problem = tools.problem(name)
    if problem is not None:
        yield loc, problem


def _narrowed(wanted: list[Any], agent: Agent, tools: ToolNames, loc: Loc
              ) -> Iterator[Problem]:
    """A step's ``tools`` only narrow its agent's grants: each must meet one of them."""
    for i, name in enumerate(wanted):
        if not isinstance(name, str):
            continue
        if not any(ch in name for ch in "*?["):
            problem = tools.problem(name)
            if problem is not None:
                yield (*loc, "tools", i), problem
                continue
        if _meets(name, agent.tools, tools.names):
            continue
        shown = ", ".join(agent.tools) or "none"
        yield (*loc, "tools", i), (
            f"{name!r} is not among the tools granted to agent {agent.name!r} (its grants: "
            f"{shown}); a step's tools can only narrow its agent's grants")


def _meets(wanted: str, grants: Collection[str], names: Collection[str]) -> bool:
    for grant in grants:
        if fnmatch.fnmatchcase(wanted, grant) or fnmatch.fnmatchcase(grant, wanted):
            return True
    return any(fnmatch.fnmatchcase(name, wanted)
               and any(fnmatch.fnmatchcase(name, grant) for grant in grants)
               for name in names)


# -- templates ------------------------------------------------------------------------------


class _Graph:
    """Which steps come before which: needs, made transitive, computed only when asked.

    Ancestors are bit sets (Python ints) built in topological order, so a playbook of
    thousands of steps costs one pass over its needs, and most references (to a step's
    direct needs) do not build them at all.
    """

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.ids: list[str] = [step["id"] if isinstance(step.get("id"), str) else ""
                               for step in steps]
        self._index = {step_id: i for i, step_id in enumerate(self.ids) if step_id}
        self.needs: dict[str, list[str]] = {}
        for i, step in enumerate(steps):
            listed = step.get("needs")
            needs = listed if isinstance(listed, list) else self.ids[i - 1 : i] if i else []
            # What is not a step was reported by the loader; it orders nothing here.
            self.needs.setdefault(self.ids[i], [n for n in needs
                                                if isinstance(n, str) and n in self._index])
        self._ancestors: dict[str, int] | None = None

    def known(self, step_id: str) -> bool:
        return step_id in self._index

    def before(self, wanted: str, step_id: str) -> bool:
        """Whether ``wanted`` has finished whenever ``step_id`` runs."""
        if wanted in self.needs.get(step_id, ()):
            return True
        if self._ancestors is None:
            self._ancestors = self._transitive()
        if not self._ancestors:
            return True  # a cycle, reported by the loader: nothing to add to it
        return bool(self._ancestors.get(step_id, 0) >> self._index[wanted] & 1)

    def _transitive(self) -> dict[str, int]:
        ids = list(self.needs)
        order = topological_order(ids, [self.needs[i] for i in ids])
        ancestors: dict[str, int] = {}
        for each in order or []:
            bits = 0
            for need in self.needs[each]:
                bits |= ancestors[need] | (1 << self._index[need])
            ancestors[each] = bits
        return ancestors


def _templates(value: Any, loc: Loc, names: frozenset[str], graph: _Graph,
               step_id: str | None, *, expression: bool = False,
               itself: bool = False) -> Iterator[Problem]:
    """Every string in ``value`` parses and reads only what its context will hold."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _templates(item, (*loc, key), names, graph, step_id,
                                  expression=expression, itself=itself)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _templates(item, (*loc, i), names, graph, step_id,
                                  expression=expression, itself=itself)
        return
    if not isinstance(value, str) or (not expression and "{" not in value):
        return
    what = "expression" if expression else "template"
    try:
        reads = templating.reads(value, expression=expression)
    except ValueError as exc:
        yield loc, f"invalid {what} {value!r}: {exc}"  # as the loader says it
        return
    for name in sorted(reads.names - names):
        close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        yield loc, (f"{what} {_shown(value)} reads {name!r}, which is not defined here{hint}; "
                    f"it can read {', '.join(sorted(names))}")
    if "steps" not in names or step_id is None:
        return
    for wanted in dict.fromkeys(reads.steps):
        if not graph.known(wanted):
            close = difflib.get_close_matches(wanted, graph.ids, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield loc, f"{what} {_shown(value)} reads steps.{wanted}, which is not a step{hint}"
        elif not (graph.before(wanted, step_id) or (itself and wanted == step_id)):
            yield loc, (f"{what} {_shown(value)} reads steps.{wanted}, which has not run when "
                        f"step {step_id!r} runs; add {wanted!r} to its needs")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:59] + "…")


# -- python targets -----------------------------------------------------------------------


class _Modules:
    """Finds ``module:function`` targets without running the workspace's code.

    A module of the workspace (a file in its folder, which a run imports through the
    workspace's own loader) is parsed, so a syntax error is reported at its own line and a
    missing function by name; any other module is imported as a run would.
    """

    def __init__(self, modules: WorkspaceModules) -> None:
        self.modules = modules
        self.root = modules.root
        self._parsed: dict[Path, ast.Module | SyntaxError | OSError] = {}

    def problem(self, target: str) -> str | None:
        module, _, attribute = target.partition(":")
        file = self.modules.file(module)
        if file is None:
            return self._installed(module, attribute)
        tree = self._parse(file)
        relative = file.relative_to(self.root).as_posix()
        if isinstance(tree, SyntaxError):
            return (f"cannot import {module!r}: {relative}:{tree.lineno or 1}:"
                    f"{tree.offset or 1}: syntax error: {tree.msg}")
        if isinstance(tree, OSError):
            return f"cannot import {module!r}: cannot read {relative}: {tree.strerror}"
        first = attribute.split(".")[0]
        if first in _bound_names(tree) or "*" in _bound_names(tree):
            return None
        defined = sorted(n for n in _bound_names(tree) if not n.startswith("_"))
        close = difflib.get_close_matches(first, defined, n=1, cutoff=0.6)
        hint = f" (did you mean {module}:{close[0]}?)" if close else ""
        return f"{relative} defines no {first!r}{hint}"

    def _parse(self, file: Path) -> ast.Module | SyntaxError | OSError:
        if file not in self._parsed:
            try:
                source = file.read_bytes()
                self._parsed[file] = ast.parse(source, filename=str(file))
            except (SyntaxError, OSError) as exc:
                self._parsed[file] = exc
            except ValueError as exc:  # a NUL byte in the source
                self._parsed[file] = SyntaxError(str(exc))
        return self._parsed[file]

    def _installed(self, module: str, attribute: str) -> str | None:
        # Not the workspace's own: an installed package, imported as the worker would.
        try:
            found: Any = self.modules.import_module(module)
        except Exception as exc:  # whatever importing it raises, a run would raise too
            return f"cannot import {module!r}: {exc}"
        for part in attribute.split("."):
            if not hasattr(found, part):
                return f"module {module!r} has no {attribute!r}"
            found = getattr(found, part)
        return None if callable(found) else f"{module}:{attribute} is not a function"


def _bound_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level (in any branch of an if or a try)."""
    names: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For
                        | ast.AsyncFor | ast.With | ast.AsyncWith):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
                targets = [node.target]
            else:
                targets = [item.optional_vars for item in node.items
                           if item.optional_vars is not None]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            names.add("*")  # a module __getattr__ can answer any name
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue  # what a function or class binds inside is not the module's
        for block in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, block, []):
                if isinstance(child, ast.ExceptHandler):
                    pending.extend(child.body)
                elif isinstance(child, ast.stmt):
                    pending.append(child)
    return names


def _python(modules: _Modules, target: str, loc: Loc) -> Iterator[Problem]:
    problem = modules.problem(target)
    if problem is not None:
        yield loc, problem
