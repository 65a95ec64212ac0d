"""Runs/s with the workers on one network-namespace host and the server on another.

Used by ``orchestrator.py`` (``pg_hosts_*`` figures): the same drain of enqueued runs by
1 and by 4 worker processes, the processes in a namespace of their own and the embedded
PostgreSQL in the root namespace, so every statement crosses a veth link as it would
cross a LAN (``tests/support/netns.py``). Both "hosts" still share this machine's cores:
the figure shows what the round trips across a link change, not more CPU. Needs root
(``ip netns``); else the figures say why they are missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Drain = Callable[..., dict[str, Any]]


def scaling_across_hosts(drain: Drain, root: Path, n: int, concurrency: int,
                         settings: dict[str, str]) -> dict[str, Any]:
    """``drain(root, url, n, processes, concurrency, prefix=...)`` for 1 and 4 processes
    on a namespace host against a server in the root namespace."""
    from support import netns
    from support.postgres import EmbeddedPostgres

    reason = netns.unavailable()
    if reason is not None:
        return {"pg_hosts_unavailable": reason}
    out: dict[str, Any] = {}
    with netns.Hosts(1) as hosts:
        pg = EmbeddedPostgres(fast=False, settings=settings, also_on=[hosts.interface])
        pg.start()
        try:
            for processes in (1, 4):
                url = pg.create_database(f"bench_hosts_{processes}").replace(
                    "127.0.0.1", hosts.gateway)
                result = drain(root, url, n, processes, concurrency, prefix=hosts[0].prefix)
                out[f"pg_hosts_runs_per_s_{processes}"] = result["runs_per_s"]
                out[f"pg_hosts_cpu_busy_{processes}"] = result["cpu_busy"]
        finally:
            pg.stop()
    out["pg_hosts_scaling_4_vs_1"] = (out["pg_hosts_runs_per_s_4"]
                                      / out["pg_hosts_runs_per_s_1"])
    return out
