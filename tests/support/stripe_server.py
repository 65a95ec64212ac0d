"""A Stripe-compatible server (``localstripe``) on ``127.0.0.1``, for the billing connector.

localstripe is a stateful fake of the Stripe REST API (customers, products, prices,
invoice items, invoices, finalize, void, pay, ...). It is run as a subprocess through a
small launcher rather than its ``localstripe`` script, because the script binds ``::``
(every interface) and pickles its whole store to the fixed path
``/tmp/localstripe.pickle`` on every write, which parallel servers would share; the
launcher binds ``127.0.0.1`` only and keeps the store in memory.

Any ``sk_test_...`` key is accepted (localstripe checks only the form of the key).
Point the official SDK at it with ``stripe.StripeClient(server.api_key,
base_addresses={"api": server.url})``.

It does NOT honour ``Idempotency-Key``: the header is accepted and ignored, so a retried
create makes a second object (see tests/support/README.md).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from support.netutil import HOST, free_port, stop_process, wait_for_port

__all__ = ["StripeTestServer"]

_LAUNCHER = """\
import sys
from aiohttp import web
from localstripe import resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None)
"""


class StripeTestServer:
    """``localstripe`` as a subprocess on ``127.0.0.1`` and a free port."""

    def __init__(self, *, api_key: str = "sk_test_soloist") -> None:
        self.host = HOST
        self.port = 0
        self.api_key = api_key
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="soloist-stripe-")
        log = Path(self._tmp.name) / "localstripe.log"
        self.port = free_port()
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, self.host, str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for_port(self.port, process=self._process, log=log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
