"""A Stripe-compatible server (``localstripe``) on ``127.0.0.1``, for the billing connector.

The demo's :class:`~soloist.demo.billing.StripeServer`: localstripe, a stateful fake of
the Stripe REST API, run through a launcher that binds ``127.0.0.1`` only and keeps the
store in memory (its own script binds ``::`` and pickles the store to the fixed path
``/tmp/localstripe.pickle``, which parallel servers would share).

Any ``sk_test_...`` key is accepted (localstripe checks only the form of the key).
Point the official SDK at it with ``stripe.StripeClient(server.api_key,
base_addresses={"api": server.url})``.

It does NOT honour ``Idempotency-Key``: the header is accepted and ignored, so a retried
create makes a second object (see tests/support/README.md). It never rate-limits by
itself; :meth:`StripeTestServer.rate_limit` makes the launcher answer the next N API
requests with Stripe's ``429`` (the one thing this harness adds to the demo's server).
"""

from __future__ import annotations

import json
import urllib.request

from soloist.demo.billing import StripeServer

__all__ = ["StripeTestServer"]

_RATE_LIMIT_PATH = "/_config/soloist/rate_limit"  # under /_config/: localstripe skips auth

# Run by the demo's launcher before it serves; sys.argv[3] is the path that sets the limit.
_RATE_LIMIT = """\
import json

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
"""


class StripeTestServer(StripeServer):
    """``localstripe`` as a subprocess on ``127.0.0.1`` and a free port."""

    extensions = _RATE_LIMIT

    def __init__(self, *, api_key: str = "sk_test_soloist") -> None:
        super().__init__(api_key=api_key)

    def launcher_arguments(self) -> list[str]:
        return [_RATE_LIMIT_PATH]

    def rate_limit(self, count: int, *, retry_after: int | None = None) -> None:
        """Answer the next ``count`` API requests with ``429`` (a "429 storm").

        The body is Stripe's (``code: rate_limit``; the SDK raises ``RateLimitError``);
        ``Retry-After`` is sent only when given, as Stripe itself usually omits it.
        """
        payload = json.dumps({"count": count, "retry_after": retry_after}).encode()
        request = urllib.request.Request(self.url + _RATE_LIMIT_PATH, data=payload)
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
