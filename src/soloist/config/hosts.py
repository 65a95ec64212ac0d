"""Hosts as settings name them: one check, for connectors here and for the host patterns
of tools and policies (:mod:`soloist.control.hosts`, which builds on it).

A connector's host (``smtp_host``, ``imap_host``) is a host name or an IP address and
nothing else: no scheme, no path, no port (the port is a setting of its own). A host
name's labels are letters, digits, ``-`` (not first or last) and ``_`` (which DNS allows
and container names use), each at most 63 characters, 253 in all.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_MAX_NAME = 253


def url_like(text: str) -> bool:
    """Whether ``text`` holds a scheme, a path or white space: a URL, not a host."""
    return "://" in text or "/" in text or any(ch.isspace() for ch in text)


def split_port(text: str, what: str = "host") -> tuple[str, int | None]:
    """(host, port or None) of ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6
    address; ``ValueError`` naming ``what`` when the port is not a number."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"{what} {text!r} has an invalid port")
    return host, int(port) if port else None


def check_host(value: str) -> str:
    """``value`` as a host name or IP address (lower case), or ``ValueError`` saying why."""
    text = value.strip().lower()
    example = "such as mail.example.com or 127.0.0.1"
    if not text:
        raise ValueError(f"a host cannot be empty; give a host name {example}")
    if url_like(text):
        raise ValueError(f"{value!r} must be a host name {example}, without a scheme or a "
                         "path")
    host, port = split_port(text)
    if port is not None:
        raise ValueError(f"{value!r} must be a host name {example}, without a port: the "
                         "port is a setting of its own")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if len(host) > _MAX_NAME or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{value!r} is not a host name or an IP address ({example})")
    return host
