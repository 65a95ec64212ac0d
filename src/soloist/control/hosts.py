"""Host patterns: which hosts a tool or connector may reach.

A pattern is a host name, optionally with a port (``api.example.com``,
``example.com:8443``, ``[::1]:8080``), and may start with a ``*.`` glob. Policies check
their patterns with :func:`check_host_pattern` when they are deployed; tools match a
request against a :class:`HostAllowList`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from soloist.config.hosts import split_port, url_like


@dataclass(frozen=True)
class HostAllowList:
    """Host patterns a tool may reach; empty allows nothing."""

    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str]) -> HostAllowList:
        return cls(tuple(check_host_pattern(p) for p in patterns))

    def allows(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        for pattern in self.patterns:
            want_host, want_port = _split(pattern)
            if fnmatchcase(host, want_host) and (want_port is None or want_port == port):
                return True
        return False


def check_host_pattern(pattern: str) -> str:
    """``pattern`` normalised (lower case), or ``ValueError`` saying what is wrong."""
    text = str(pattern).strip().lower()
    if not text:
        raise ValueError("a host pattern cannot be empty")
    if url_like(text):
        raise ValueError(f"host pattern {pattern!r} must be a host name such as "
                         "'api.example.com', 'example.com:8443' or '*.example.com', not a URL")
    _, port = _split(text)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"host pattern {pattern!r} has an invalid port")
    return text


def _split(pattern: str) -> tuple[str, int | None]:
    """(host glob, port or None) of a pattern; ``[::1]:8080`` and ``::1`` work too."""
    return split_port(pattern, "host pattern")
