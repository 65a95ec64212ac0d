"""What the SMTP and IMAP clients share: one account on one server, opened and closed.

``password`` is the resolved secret, kept private and out of ``repr``; ``security`` is
the ``[connectors.NAME]`` setting of the same name; ``timeout`` bounds every network wait.
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from soloist.config.connectors import Security


class MailAccount(ABC):
    def __init__(self, host: str, port: int, *, username: str | None, password: str | None,
                 security: Security, timeout: float,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.security: Security = security
        self.timeout = timeout
        self._ssl_context = ssl_context

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context to connect with; none for ``security = "none"`` (making one
        loads the system's certificates: not for a connection that will not use them)."""
        if self.security == "none":
            return None
        return self._ssl_context or ssl.create_default_context()

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.where}, user={self.username!r}, "
                f"security={self.security!r})")

    @abstractmethod
    def open(self) -> Self:
        """Connect and log in."""

    @abstractmethod
    def close(self) -> None:
        """Drop the connection; never raises."""

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
