"""The workspace's connectors: built from ``[connectors.*]`` on first use, each kind's module
imported only when a connector of that kind is configured.

:class:`Connectors` hands the tools of every connector to the workspace's tool registry,
lists their sources to the poller, and answers ``soloist connectors``: each connector's
health (its breaker), its bucket and slots, its cursors and its inbound backlog, all read
from the store, so what one process shows is what every worker shares.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soloist.config.connectors import ConnectorBase
from soloist.control.breakers import Breakers
from soloist.control.buckets import refill, shared
from soloist.errors import ConfigError, NotFound
from soloist.execution.tools.base import Tool
from soloist.integrations.connector import Connector, Context, Source
from soloist.integrations.guard import Guard, breaker_name
from soloist.store.base import Store
from soloist.store.connectors import BucketRow

#: kind -> "module:class" of its connector
KINDS: dict[str, str] = {
    "email": "soloist.integrations.mail.connector:EmailConnector",
    "calendar": "soloist.integrations.calendar.connector:CalendarConnector",
    "billing": "soloist.integrations.billing.connector:BillingConnector",
    "git": "soloist.integrations.git.connector:GitConnector",
    "webhook": "soloist.integrations.webhooks_connector:WebhookConnector",
}


def source_key(connector: str, source: str) -> str:
    """The name of a source in the store (its cursor, its backlog, its poll lead)."""
    return f"{connector}:{source}"


@dataclass(frozen=True)
class ConnectorStatus:
    name: str
    kind: str
    health: str  # ok | failing (breaker counting failures) | open | half_open
    failures: int
    breaker_opened_at: float | None
    rate: float | None
    burst: int | None
    tokens: float | None  # in the shared bucket now (None: never used, or no rate)
    concurrency: int | None
    in_flight: int
    cursors: dict[str, Any] = field(default_factory=dict)  # source -> cursor value
    backlog: dict[str, int] = field(default_factory=dict)  # source -> events waiting
    backlog_limit: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "health": self.health,
            "failures": self.failures, "breaker_opened_at": self.breaker_opened_at,
            "bucket": None if self.rate is None else {
                "rate": self.rate, "burst": self.burst, "tokens": self.tokens},
            "concurrency": None if self.concurrency is None else {
                "cap": self.concurrency, "in_flight": self.in_flight},
            "cursors": self.cursors, "backlog": self.backlog,
            "backlog_limit": self.backlog_limit,
        }


class Connectors:
    def __init__(self, sections: Mapping[str, ConnectorBase], store: Store,
                 secret: Callable[[str], str], state_dir: Path, workspace: Path,
                 breakers: Breakers, actor: str = "system:connector") -> None:
        self.sections = dict(sections)
        self.store = store
        self._secret = secret
        self._state_dir = state_dir
        self._workspace = workspace
        self._breakers = breakers
        self._actor = actor
        self._built: dict[str, Connector] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.sections

    def __iter__(self) -> Iterator[Connector]:
        return (self.get(name) for name in sorted(self.sections))

    def section(self, name: str) -> ConnectorBase:
        try:
            return self.sections[name]
        except KeyError:
            known = ", ".join(sorted(self.sections)) or "none is configured"
            raise NotFound(f"no connector named {name!r} in soloist.toml (known: {known})"
                           ) from None

    def get(self, name: str) -> Connector:
        built = self._built.get(name)
        if built is not None:
            return built
        section = self.section(name)
        kind = getattr(section, "kind", "")
        module_name, _, class_name = KINDS[kind].partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except ImportError as exc:
            raise ConfigError(f"connector {name} (kind {kind}) needs the Python package "
                              f"{exc.name or 'it imports'}, which is not installed: pip "
                              "install 'soloist[connectors]'") from None
        guard = Guard(self.store, name, section, self._breakers.policy(name))
        folder = self._state_dir / "connectors" / name
        connector: Connector = cls(name, section, Context(
            self.store, self._secret, guard, folder, self._workspace, self._actor))
        self._built[name] = connector
        return connector

    def tools(self) -> list[Tool]:
        return [tool for connector in self for tool in connector.tools()]

    def sources(self) -> list[tuple[Connector, Source]]:
        return [(connector, source) for connector in self for source in connector.sources()]

    def status(self, name: str | None = None) -> list[ConnectorStatus]:
        names = [name] if name is not None else sorted(self.sections)
        sections = {n: self.section(n) for n in names}
        with self.store.read() as tx:
            breakers = {row.name: row for row in tx.breakers.all()}
            buckets = {row.name: row for row in tx.buckets.buckets()}
            slots = tx.buckets.slots()
            cursors = tx.cursors.list()
            backlogs = tx.inbound.backlogs()
        now = time.time()
        out: list[ConnectorStatus] = []
        for n, section in sections.items():
            breaker = breakers.get(breaker_name(n))
            health = "ok"
            if breaker is not None and breaker.state != "closed":
                health = breaker.state
            elif breaker is not None and breaker.failures:
                health = "failing"
            bucket = buckets.get(n)
            rate_burst = section.bucket
            prefix = f"{n}:"
            out.append(ConnectorStatus(
                name=n, kind=str(getattr(section, "kind", "")), health=health,
                failures=breaker.failures if breaker else 0,
                breaker_opened_at=breaker.opened_at if breaker else None,
                rate=rate_burst[0] if rate_burst else None,
                burst=rate_burst[1] if rate_burst else None,
                tokens=_tokens_now(bucket, rate_burst, now),
                concurrency=section.concurrency,
                in_flight=sum(1 for s in slots if s.name == n and s.expires_at > now),
                cursors={c.source: c.value for c in cursors if c.connector == n},
                backlog={k[len(prefix):]: v for k, v in backlogs.items()
                         if k.startswith(prefix)},
                backlog_limit=section.backlog,
            ))
        return out

    def close(self) -> None:
        built, self._built = self._built, {}
        for connector in built.values():
            connector.close()


def _tokens_now(row: BucketRow | None, rate_burst: tuple[float, int] | None,
                now: float) -> float | None:
    """What the shared bucket holds now (it refills between calls; the row is as the last
    call left it); None before its first use or without a rate."""
    if row is None or rate_burst is None:
        return None
    return round(refill(shared(row, *rate_burst, now), now).tokens, 3)
