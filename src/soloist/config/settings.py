"""Workspace settings: defaults < soloist.toml < SOLOIST_* environment < flags.

``soloist.toml`` is read once, when the workspace opens, into the frozen tables of
:mod:`soloist.config.sections`; a mistake in it stops every command with one sentence
that names the line. What needs an engine (a model provider, an MCP server, a tool
module) is still built on first use, from the checked tables.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from soloist.config.problems import requirement, sentence
from soloist.config.sections import Section, SoloistToml, WorkerSection
from soloist.errors import ConfigError

CONFIG_FILE = "soloist.toml"

S = TypeVar("S", bound=Section)


class Settings(SoloistToml):
    """The tables of ``soloist.toml`` (with the environment's overrides) and what the
    workspace derives from them."""

    root: Path
    database_url: str
    database_direct_url: str | None = None
    actor: str
    secret_key_file: Path

    @property
    def state_dir(self) -> Path:
        return self.root / ".soloist"

    @property
    def name(self) -> str:
        return self.workspace.name or self.root.name

    @property
    def concurrency(self) -> int:
        return self.worker.concurrency

    @property
    def lease_seconds(self) -> float:
        return self.worker.lease_seconds

    @property
    def poll_seconds(self) -> float:
        return self.worker.poll_seconds

    @property
    def queue_limits(self) -> dict[str, int]:
        return {name: queue.concurrency for name, queue in self.queues.items()
                if queue.concurrency is not None}

    @property
    def tool_modules(self) -> tuple[str, ...]:
        return self.tools.modules


def parse_toml(text: str, file: str = CONFIG_FILE) -> SoloistToml:
    """The tables of a ``soloist.toml`` text; a mistake is a one-sentence ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.fullmatch(r"(.*) \(at line (\d+), column \d+\)", str(exc), re.DOTALL)
        if where is None:
            raise ConfigError(f"{file}: {exc}") from None
        # tomllib names a table as a Python tuple, ('worker',): say it as the file does
        message = re.sub(r"\(((?:'[^']*',? ?)+)\)", lambda m: "[" + ".".join(
            re.findall(r"'([^']*)'", m.group(1))) + "]", where.group(1))
        raise ConfigError(f"{file}:{where.group(2)}: {message[:1].lower()}{message[1:]}"
                          ) from None
    try:
        return SoloistToml.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(sentence(exc.errors()[0], root=SoloistToml, text=text,
                                   file=file)) from None


def parse_table(model: type[S], data: Mapping[str, Any] | None, where: str) -> S:
    """One table given as a mapping (``where`` is its name, e.g. ``memory.search``): for
    code and tests that build a section without a file."""
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise ConfigError(sentence(exc.errors()[0], root=model,
                                   base=tuple(where.split(".")))) from None


_WORKER_VARIABLES = {"SOLOIST_CONCURRENCY": ("concurrency", int, "a whole number"),
                     "SOLOIST_LEASE_SECONDS": ("lease_seconds", float, "a number"),
                     "SOLOIST_POLL_SECONDS": ("poll_seconds", float, "a number")}


def _worker(worker: WorkerSection, env: Mapping[str, str]) -> WorkerSection:
    """``[worker]`` with the SOLOIST_* variables that override it, checked by the same
    model (a variable is text: it is read as the number the key takes first)."""
    overrides: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for variable, (key, cast, kind) in _WORKER_VARIABLES.items():
        text = env.get(variable)
        if text is None:
            continue
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise ConfigError(f"{variable} must be {kind} above 0, not {text!r}")
        overrides[key] = value
        variables[key] = variable
    if not overrides:
        return worker
    try:
        return WorkerSection.model_validate({**worker.model_dump(exclude_unset=True),
                                             **overrides})
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = variables[str(error["loc"][0])]
        raise ConfigError(f"{variable} {requirement(error)}, not {env[variable]!r}") from None


def load_settings(root: Path, env: Mapping[str, str] | None = None,
                  database_url: str | None = None) -> Settings:
    env = os.environ if env is None else env
    root = root.resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{root} is not a Soloist workspace (no {CONFIG_FILE}); "
                          "create one with `soloist init DIR` or pass --workspace")
    tables = parse_toml(path.read_text(encoding="utf-8"))
    url = database_url or env.get("SOLOIST_DATABASE_URL") or tables.database.url
    sections = {name: getattr(tables, name) for name in SoloistToml.model_fields}
    sections["worker"] = _worker(tables.worker, env)
    return Settings(
        **sections,
        root=root,
        database_url=url or f"sqlite:///{root / '.soloist' / 'state.db'}",
        database_direct_url=(env.get("SOLOIST_DATABASE_DIRECT_URL")
                             or tables.database.direct_url),
        actor=env.get("SOLOIST_ACTOR") or env.get("USER") or "operator",
        secret_key_file=Path(env.get("SOLOIST_SECRET_KEY_FILE")
                             or root / ".soloist" / "secret.key"),
    )
