"""The receiver of pushed deliveries (``POST /hooks/PATH``), whatever serves HTTP.

:func:`receive` finds the connector whose hook is served at ``PATH``, lets it check the
delivery (its signature, its timestamp, its id) and stores it in that connector's inbound
backlog in one transaction; only then is the answer a ``2xx``, so a delivery that was
acknowledged is never lost, and one that was not will be sent again by its sender. The
scheduler later publishes it on the event bus, where ``triggers: [{event: ...}]`` start
playbooks.

The answers: ``200 {"accepted": true}``; ``200 {"duplicate": true}`` for a delivery id
already stored (acknowledged again, stored once); ``503`` with ``Retry-After`` when the
backlog is full or the store cannot be reached; ``401`` for a signature that does not check
out; ``400`` for a delivery that cannot be read; ``404`` for a path no connector serves.
Every refusal carries one sentence under ``error`` and stores nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from soloist.errors import (
    DeterministicError,
    SignatureError,
    SoloistError,
    StoreUnavailable,
    describe,
)
from soloist.integrations.connector import Connector, Hook
from soloist.integrations.registry import Connectors, source_key
from soloist.store.base import NewEvent

__all__ = ["HOOK_SOURCE", "RETRY_AFTER", "HookReply", "find_hook", "receive"]

_log = logging.getLogger(__name__)
#: the source name of pushed deliveries in a connector's cursors and backlogs
HOOK_SOURCE = "hook"
#: seconds a sender is asked to wait when the backlog is full
RETRY_AFTER = 5


@dataclass(frozen=True)
class HookReply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


def _refusal(status: int, error: str, **headers: str) -> HookReply:
    return HookReply(status, dict(headers), {"error": error})


def find_hook(connectors: Connectors, path: str) -> tuple[Connector, Hook] | None:
    """The connector served at ``/hooks/PATH`` and its hook, if one is.

    A connector that cannot say (its secret is not set) does not keep the others from
    being found; when none is, the first such error is raised."""
    failed: SoloistError | None = None
    for name in sorted(connectors.sections):
        try:
            connector = connectors.get(name)
            hook = connector.hook()
        except SoloistError as exc:
            failed = failed or exc
            continue
        if hook is not None and hook.path == path:
            return connector, hook
    if failed is not None:
        raise failed
    return None


def receive(connectors: Connectors, path: str, headers: Mapping[str, str], body: bytes,
            now: float | None = None) -> HookReply:
    """Check and store one delivery to ``/hooks/PATH`` (see the module's docstring)."""
    now = time.time() if now is None else now
    try:
        found = find_hook(connectors, path)
    except SoloistError as exc:  # a connector cannot be built: its secret is not set
        return _refusal(503, f"cannot take deliveries at /hooks/{path}: {describe(exc)}",
                        **{"Retry-After": str(RETRY_AFTER)})
    if found is None:
        return _refusal(404, f"no connector takes deliveries at /hooks/{path}")
    connector, hook = found
    try:
        event = hook.accept(headers, body, now)
    except SignatureError as exc:
        return _refusal(401, describe(exc))
    except DeterministicError as exc:
        return _refusal(400, describe(exc))
    except SoloistError as exc:  # its secret cannot be read now (the store is down)
        return _refusal(503, f"cannot check the delivery: {describe(exc)}",
                        **{"Retry-After": str(RETRY_AFTER)})
    key = source_key(connector.name, HOOK_SOURCE)
    limit = connector.section.backlog
    try:
        with connectors.store.transaction() as tx:
            outcome = tx.inbound.accept(key, event.delivery_id, {
                "topic": event.topic, "payload": event.payload}, limit)
            if outcome.outcome == "accepted":
                tx.events.append(NewEvent("connector.received", {
                    "connector": connector.name, "source": HOOK_SOURCE, "accepted": 1,
                    "duplicates": 0}, actor=f"connector:{connector.name}", ts=now))
    except StoreUnavailable as exc:
        _log.warning("cannot store a delivery to /hooks/%s: %s", path, describe(exc))
        return _refusal(503, "the store cannot be reached; send it again later",
                        **{"Retry-After": str(RETRY_AFTER)})
    if outcome.outcome == "full":
        return _refusal(503, f"connector {connector.name} has {limit} deliveries waiting to "
                        "be processed, its backlog; send it again later",
                        **{"Retry-After": str(RETRY_AFTER)})
    if outcome.outcome == "duplicate":
        return HookReply(200, {}, {"duplicate": True, "delivery_id": event.delivery_id})
    return HookReply(200, {}, {"accepted": True, "delivery_id": event.delivery_id})
