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
create makes a second object (see tests/support/README.md). It never rate-limits by
itself; :meth:`StripeTestServer.rate_limit` makes the launcher answer the next N API
requests with Stripe's ``429`` (the one thing the launcher adds to the server).
"""

from __future__ import annotations

import json
import sys
import urllib.request

from support.netutil import ProcessServer

__all__ = ["StripeTestServer"]

_RATE_LIMIT_PATH = "/_config/soloist/rate_limit"  # under /_config/: localstripe skips auth

_LAUNCHER = """\
import json
import sys
from aiohttp import web
from localstripe import resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None
limited = {"count": 0, "retry_after": None}


@web.middleware
async def rate_limit(request, handler):
    if request.path.startswith("/v1/") and limited["count"] > 0:
        limited["count"] -= 1
        body = {"error": {"type": "invalid_request_error", "code": "rate_limit",
                          "message": "Too many requests. (soloist test server)"}}
        headers = {}
        if limited["retry_after"] is not None:
            headers["Retry-After"] = str(limited["retry_after"])
        return web.json_response(body, status=429, headers=headers)
    return await handler(request)


async def set_rate_limit(request):
    limited.update(json.loads(await request.read()))
    return web.json_response(limited)


app.middlewares.insert(0, rate_limit)
app.router.add_post(sys.argv[3], set_rate_limit)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None)
"""


class StripeTestServer(ProcessServer):
    """``localstripe`` as a subprocess on ``127.0.0.1`` and a free port."""

    prefix = "soloist-stripe-"
    log_name = "localstripe.log"

    def __init__(self, *, api_key: str = "sk_test_soloist") -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-c", _LAUNCHER, self.host, str(self.port), _RATE_LIMIT_PATH]

    def rate_limit(self, count: int, *, retry_after: int | None = None) -> None:
        """Answer the next ``count`` API requests with ``429`` (a "429 storm").

        The body is Stripe's (``code: rate_limit``; the SDK raises ``RateLimitError``);
        ``Retry-After`` is sent only when given, as Stripe itself usually omits it.
        """
        payload = json.dumps({"count": count, "retry_after": retry_after}).encode()
        request = urllib.request.Request(self.url + _RATE_LIMIT_PATH, data=payload)
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
