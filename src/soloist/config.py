"""Workspace settings: defaults < soloist.toml < SOLOIST_* environment < flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soloist.errors import ConfigError

CONFIG_FILE = "soloist.toml"


@dataclass(frozen=True)
class Settings:
    root: Path
    name: str = "workspace"
    database_url: str = ""
    concurrency: int = 8
    lease_seconds: float = 30.0
    poll_seconds: float = 0.25
    queue_limits: dict[str, int] = field(default_factory=dict)
    tool_modules: tuple[str, ...] = ()
    actor: str = ""
    secret_key_file: Path = Path()
    raw: dict[str, Any] = field(default_factory=dict)  # soloist.toml as parsed

    @property
    def state_dir(self) -> Path:
        return self.root / ".soloist"


def _number(value: Any, what: str, cast: type[int] | type[float]) -> Any:
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{what} must be positive, not {value!r}")
    return number


def load_settings(root: Path, env: Mapping[str, str] | None = None,
                  database_url: str | None = None) -> Settings:
    env = os.environ if env is None else env
    root = root.resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{root} is not a Soloist workspace (no {CONFIG_FILE}); "
                          "create one with `soloist init DIR` or pass --workspace")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    workspace = data.get("workspace", {})
    worker = data.get("worker", {})
    queues = data.get("queues", {})
    url = database_url or env.get("SOLOIST_DATABASE_URL") or data.get("database", {}).get("url")
    if not url:
        url = f"sqlite:///{root / '.soloist' / 'state.db'}"
    limits = {}
    for name, spec in queues.items():
        if isinstance(spec, dict) and "concurrency" in spec:
            limits[name] = _number(spec["concurrency"], f"{CONFIG_FILE}: queues.{name}."
                                   "concurrency", int)
    return Settings(
        root=root,
        name=str(workspace.get("name", root.name)),
        database_url=url,
        concurrency=_number(env.get("SOLOIST_CONCURRENCY", worker.get("concurrency", 8)),
                            "worker concurrency", int),
        lease_seconds=_number(env.get("SOLOIST_LEASE_SECONDS",
                                      worker.get("lease_seconds", 30.0)),
                              "worker lease_seconds", float),
        poll_seconds=_number(env.get("SOLOIST_POLL_SECONDS", worker.get("poll_seconds", 0.25)),
                             "worker poll_seconds", float),
        queue_limits=limits,
        tool_modules=tuple(data.get("tools", {}).get("modules", [])),
        actor=env.get("SOLOIST_ACTOR") or env.get("USER") or "operator",
        secret_key_file=Path(env.get("SOLOIST_SECRET_KEY_FILE")
                             or root / ".soloist" / "secret.key"),
        raw=data,
    )
