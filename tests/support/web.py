"""The dashboard and API of a workspace on a free port of 127.0.0.1, in a thread."""

from __future__ import annotations

import socket
import threading
from typing import Self

from soloist.interfaces.api.app import create_app
from soloist.workspace import Workspace


class Web:
    """``create_app(ws)`` served by uvicorn until the ``with`` block ends."""

    def __init__(self, ws: Workspace) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(ws), log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
