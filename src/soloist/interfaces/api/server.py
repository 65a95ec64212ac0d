"""The web server as a service beside the worker and the scheduler (``soloist up``):
uvicorn in a thread of its own, on a socket bound before anything starts (so the port is
known, and taken, before the login link is printed)."""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING

from soloist.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

#: seconds a request in progress is given to finish once the process is asked to stop
GRACE_SECONDS = 5


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: a free port); one sentence if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = "it is in use" if error.errno == 98 else (error.strerror or str(error))
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}; choose another with "
                          "--port (or [api] port in soloist.toml)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class WebServer:
    """Serves ``app`` on ``sock`` until :meth:`stop`."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.server = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False,
            timeout_graceful_shutdown=GRACE_SECONDS, log_config=None))
        self.stopped = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException:
            logging.getLogger(__name__).exception("the web server stopped")
            raise
        finally:
            self.stopped.set()
            self.sock.close()

    def stop(self) -> None:
        self.server.should_exit = True
