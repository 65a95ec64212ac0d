"""Separate "hosts" on this machine: network namespaces on a test network of their own.

``Hosts(n)`` makes ``n`` network namespaces (``sol-<hex>-h1``...), each with ``lo`` up and
one end of a veth pair; the other ends are ports of a bridge in the root namespace, which
holds the network's first address (the address a server of the test listens on, such as
the embedded PostgreSQL's ``also_on``). The network is a /24 of 10.213.0.0/16 that no
route or address of this machine overlaps; the namespaces have no default route, so
nothing but the test network can be reached from them, and the root namespace routes the
test network to the bridge alone.

A cut is ``ip link set <root end> down``: the bridge port goes down, the host's end loses
its carrier, and every packet either way is dropped where it is, with no RST and no ICMP
from the other side, as when a cable or a switch goes. A TCP connection over it hangs
until its own timeouts, as across a real partition (a ``REJECT`` rule would fail it at
once, which is not what a partition does). The bridge keeps the test network's route in
the root namespace while a port is down, so what the server sends to a cut host is dropped
at the bridge instead of following the machine's default route out. ``heal`` sets the port
up again.

Teardown deletes the namespaces (ending what still runs in them), the links and the
bridge, also after a failure; every ``Hosts`` first sweeps what earlier runs left behind
(namespaces of this prefix whose owning process is gone, with their links). Making a
namespace needs CAP_NET_ADMIN: :func:`unavailable` says why it cannot be had, for a skip
(or, under ``CI=true``, where the tests run as root, a failure).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from support.postgres import pid_alive

PREFIX = "sol"
#: Where each live ``Hosts`` records its owner's pid, so a sweep spares a run in progress.
OWNERS = Path("/run/soloist-netns")
TEST_RANGE = ipaddress.ip_network("10.213.0.0/16")
_NAMESPACE = re.compile(rf"^{PREFIX}-([0-9a-f]{{6}})-h\d+$")
_LINK = re.compile(rf"^{PREFIX}([0-9a-f]{{6}})(br|v\d+)$")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if not any((Path(d) / "ip").exists() for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")):
        return "the ip command (Debian package iproute2) is not installed"
    probe = f"{PREFIX}-probe-{secrets.token_hex(3)}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return (f"network namespaces cannot be made here (ip netns add: "
                f"{done.stderr.strip()}); it needs root or CAP_NET_ADMIN")
    _ip("netns", "del", probe, check=False)
    return None


def require() -> None:
    """Skip the test when namespaces cannot be made; under CI=true, fail it instead."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI=true (runs as root) but {reason}", pytrace=False)
    pytest.skip(reason)


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    routes: list[dict[str, Any]] = json.loads(
        _ip("-j", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst = str(route.get("dst", ""))
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(dst, strict=False))
    links: list[dict[str, Any]] = json.loads(_ip("-j", "addr").stdout or "[]")
    for link in links:
        for info in link.get("addr_info", []):
            with contextlib.suppress(ValueError, KeyError):
                used.append(ipaddress.ip_network(
                    f"{info['local']}/{info['prefixlen']}", strict=False))
    return used


def free_network() -> ipaddress.IPv4Network:
    """A /24 of :data:`TEST_RANGE` that no route or address of this machine overlaps."""
    used = [n for n in _used_networks() if n.version == 4 and n.prefixlen > 0]
    candidates = list(TEST_RANGE.subnets(new_prefix=24))
    secrets.SystemRandom().shuffle(candidates)
    for net in candidates:
        if not any(net.overlaps(other) for other in used):  # type: ignore[arg-type]
            return net
    raise RuntimeError(f"every /24 of {TEST_RANGE} is in use on this machine")


def _kill_inside(namespace: str) -> None:
    """End what still runs in ``namespace`` (processes a test started there)."""
    pids = [int(p) for p in _ip("netns", "pids", namespace, check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def sweep() -> list[str]:
    """Remove the namespaces and links of earlier runs whose owner is gone; their tags."""
    tags: set[str] = set()
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        found = _NAMESPACE.match(line.split()[0]) if line.strip() else None
        if found:
            tags.add(found.group(1))
    links: list[dict[str, Any]] = json.loads(_ip("-j", "link").stdout or "[]")
    for link in links:
        found = _LINK.match(str(link.get("ifname", "")))
        if found:
            tags.add(found.group(1))
    gone: list[str] = []
    for tag in sorted(tags):
        owner = OWNERS / tag
        with contextlib.suppress(OSError, ValueError):
            if pid_alive(int(owner.read_text())):
                continue
        _remove(tag)
        gone.append(tag)
    return gone


def _remove(tag: str) -> None:
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        found = _NAMESPACE.match(name)
        if found and found.group(1) == tag:
            _kill_inside(name)
            _ip("netns", "del", name, check=False)
    links: list[dict[str, Any]] = json.loads(_ip("-j", "link").stdout or "[]")
    for link in links:
        name = str(link.get("ifname", ""))
        found = _LINK.match(name)
        if found and found.group(1) == tag:
            _ip("link", "del", name, check=False)
    (OWNERS / tag).unlink(missing_ok=True)


@dataclass(frozen=True)
class Host:
    """One namespace: its name, its address on the test network, its link's root end."""

    name: str
    address: str
    link: str

    @property
    def prefix(self) -> list[str]:
        """What runs a command in this host: ``[*host.prefix, program, ...]``."""
        return ["ip", "netns", "exec", self.name]


class Hosts:
    """``count`` hosts on one test network; the root namespace's end is :attr:`gateway`."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self.tag = secrets.token_hex(3)
        self.network: ipaddress.IPv4Network | None = None
        self.hosts: list[Host] = []
        self.bridge = f"{PREFIX}{self.tag}br"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the test network (where servers listen)."""
        assert self.network is not None
        return str(self.network.network_address + 1)

    @property
    def interface(self) -> str:
        """:attr:`gateway` with its prefix (``10.213.7.1/24``)."""
        assert self.network is not None
        return f"{self.gateway}/{self.network.prefixlen}"

    def __enter__(self) -> Self:
        sweep()
        OWNERS.mkdir(parents=True, exist_ok=True)
        (OWNERS / self.tag).write_text(str(os.getpid()))
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _make(self) -> None:
        self.network = free_network()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", self.interface, "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(1, self.count + 1):
            name = f"{PREFIX}-{self.tag}-h{i}"
            link = f"{PREFIX}{self.tag}v{i}"
            address = str(self.network.network_address + 10 + i)
            _ip("netns", "add", name)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("link", "set", link, "master", self.bridge)
            _ip("link", "set", link, "up")
            _ip("-n", name, "addr", "add", f"{address}/{self.network.prefixlen}", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
            self.hosts.append(Host(name, address, link))

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def exec(self, host: Host, args: Sequence[str], **kwargs: Any
             ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in ``host`` to its end (by default: output captured, as text, for
        at most a minute)."""
        options: dict[str, Any] = {"capture_output": True, "text": True, "check": False,
                                   "timeout": 60, **kwargs}
        return subprocess.run([*host.prefix, *args], **options)

    def cut(self, host: Host) -> None:
        """Partition ``host``: its link's root end goes down (packets vanish both ways)."""
        _ip("link", "set", host.link, "down")

    def heal(self, host: Host) -> None:
        """Join ``host`` to the network again."""
        _ip("link", "set", host.link, "up")
        # The bridge forwards on the port again once it has been through its states.
        by = time.monotonic() + 30
        while time.monotonic() < by and self.exec(
                host, ["ip", "-j", "link", "show", "eth0"]).stdout.find('"LOWER_UP"') < 0:
            time.sleep(0.05)

    def close(self) -> None:
        """Remove every namespace, link and the bridge of this set (also half made)."""
        _remove(self.tag)
        _ip("link", "del", self.bridge, check=False)
        self.hosts = []
