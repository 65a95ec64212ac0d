"""``http.request``: one tool for HTTP, a read for GET and HEAD and a write otherwise.

Effect by method: the tool's declared ``effect`` is ``write`` (the safe default for a caller
that looks only at it) and its ``effect_of`` is :func:`http_effect`, so
``tool.effect_for({"method": "GET", ...})`` is ``read``: GET and HEAD run when the step
executes, every other method is staged as an intent and dispatched once, after the check
and gate, with the intent's key sent as the ``Idempotency-Key`` header.

Hosts: the tool reaches only hosts on its allow-list, given when it is built
(:func:`http_request_tool`, usually from ``allowed_hosts`` in ``policies.yaml``). The
default list is empty, so a workspace that configures nothing can reach nothing. A URL
whose host is not allowed is refused with a :class:`DeterministicError` before any
connection is made; redirects are followed only to allowed hosts. A pattern is a host name
(any port), ``host:port``, or a glob such as ``*.example.com``; ``*`` allows every host.

Failures: timeouts, connection errors, 408, 429 and 5xx are :class:`TransientError`
(``retry_after`` from a ``Retry-After`` header, in seconds or as an HTTP date); any other
4xx, a bad URL, or a refused host is a :class:`DeterministicError`.
"""

from __future__ import annotations

import json as jsonlib
import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from soloist.control.hosts import HostAllowList
from soloist.errors import ConfigError, DeterministicError, TransientError
from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Effect, Tool

if TYPE_CHECKING:
    import httpx

NAME = "http.request"
READ_METHODS = frozenset({"GET", "HEAD"})
MAX_REDIRECTS = 5
MAX_BODY = 1_000_000  # bytes of a response body kept in the result
_SNIPPET = 200  # characters of an error response's body quoted in the error


def http_effect(args: Mapping[str, Any]) -> Effect:
    """``read`` for GET and HEAD (the default method is GET), ``write`` for anything else."""
    method = args.get("method", "GET")
    return "read" if isinstance(method, str) and method.upper() in READ_METHODS else "write"


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Method = Annotated[
    Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    BeforeValidator(_upper),
]
Timeout = Annotated[float, Field(gt=0, le=300)]


def http_request_tool(
    allowed_hosts: Iterable[str] = (),
    *,
    transport: httpx.BaseTransport | None = None,
    trust_env: bool = True,
    name: str = NAME,
) -> Tool:
    """The ``http.request`` tool, able to reach only ``allowed_hosts``.

    ``transport`` replaces httpx's network transport (tests); ``trust_env`` lets httpx
    read proxy settings from the environment.
    """
    allow = HostAllowList.of(allowed_hosts)

    def request(
        url: str,
        method: Method = "GET",
        headers: dict[str, str] | None = None,
        params: dict[str, str | int | float | bool] | None = None,
        json: Any = None,
        body: str | None = None,
        timeout: Timeout = 30.0,
        call: ToolCall | None = None,
    ) -> dict[str, Any]:
        """Send an HTTP request to an allowed host; GET and HEAD read, other methods write."""
        if json is not None and body is not None:
            raise DeterministicError(f"{name} takes json or body, not both.")
        try:
            import httpx
        except ImportError:  # pragma: no cover - httpx comes with soloist[llm]
            raise ConfigError(f"{name} needs httpx: pip install 'soloist[llm]'") from None
        sent_headers = dict(headers or {})
        if (call is not None and method not in READ_METHODS
                and not any(k.lower() == "idempotency-key" for k in sent_headers)):
            sent_headers["Idempotency-Key"] = call.idempotency_key
        try:
            with httpx.Client(transport=transport, timeout=timeout, trust_env=trust_env,
                              follow_redirects=False) as client:
                outgoing = client.build_request(method, url, headers=sent_headers,
                                                params=params, json=json, content=body)
                return _send(client, outgoing, allow, name, timeout)
        except httpx.TimeoutException:
            raise TransientError(f"{name} {method} {_where(url)} timed out after "
                                 f"{timeout:g} s.") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DeterministicError(f"{name} cannot use the URL {url!r}: {exc}.") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{name} {method} {_where(url)} failed: "
                                 f"{exc or type(exc).__name__}.") from None

    def check(values: Mapping[str, Any], workspace: str) -> None:
        # A write is staged long before it is sent: a host it may not reach is refused now,
        # while nothing has happened, not after the gate and the step's other intents.
        try:
            import httpx
        except ImportError:  # pragma: no cover - the request itself says what is missing
            return
        url = values.get("url")
        if not isinstance(url, str):
            return  # the schema has refused it already
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise DeterministicError(f"{name} cannot use the URL {url!r}: {exc}.") from None
        _check_host(parsed, allow, name)

    return Tool(
        name, request, effect="write", idempotent=False,
        description="Send an HTTP request to an allowed host; GET and HEAD read, "
                    "other methods write.",
        tags=("network",), effect_of=http_effect, check_args=check,
    )


def _send(client: httpx.Client, outgoing: httpx.Request, allow: HostAllowList, name: str,
          timeout: float) -> dict[str, Any]:
    for _ in range(MAX_REDIRECTS + 1):
        _check_host(outgoing.url, allow, name)
        response = client.send(outgoing, stream=True)
        try:
            if response.is_redirect and response.next_request is not None:
                outgoing = response.next_request
                continue
            return _result(response, name)
        finally:
            response.close()
    raise DeterministicError(f"{name} was redirected more than {MAX_REDIRECTS} times.")


def _check_host(url: httpx.URL, allow: HostAllowList, name: str) -> None:
    if not url.host:
        raise DeterministicError(f"{name} needs an absolute URL with a host, not {str(url)!r}.")
    if url.scheme not in ("http", "https"):
        raise DeterministicError(f"{name} only speaks http and https, not {url.scheme!r}.")
    port = url.port or (443 if url.scheme == "https" else 80)
    if not allow.allows(url.host, port):
        raise DeterministicError(
            f"{name} may not reach host {url.host!r}: it is not in the allowed hosts "
            f"({', '.join(allow.patterns) or 'none configured'})."
        )


def _result(response: httpx.Response, name: str) -> dict[str, Any]:
    content, truncated = _read(response)
    status = response.status_code
    where = f"{response.request.method} {_where(str(response.request.url))}"
    if status in (408, 429) or status >= 500:
        raise TransientError(f"{name} {where} answered {status} {response.reason_phrase}.",
                             retry_after=_retry_after(response.headers.get("retry-after")))
    if status >= 400:
        snippet = content[:_SNIPPET].decode(response.encoding or "utf-8", "replace").strip()
        detail = f": {snippet}" if snippet else ""
        raise DeterministicError(f"{name} {where} answered {status} "
                                 f"{response.reason_phrase}{detail}.")
    text = content.decode(response.encoding or "utf-8", "replace")
    parsed: Any = None
    if "json" in response.headers.get("content-type", "") and text and not truncated:
        try:
            parsed = jsonlib.loads(text)
        except ValueError:
            parsed = None
    return {
        "status": status,
        "url": str(response.url),
        "headers": dict(response.headers),
        "json": parsed,
        "text": text,
        "truncated": truncated,
    }


def _read(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return b"".join(chunks)[:MAX_BODY], True
    return b"".join(chunks), False


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _where(url: str) -> str:
    """``url`` without its query string and credentials, for error messages."""
    try:
        import httpx

        parsed = httpx.URL(url)
        return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))
    except Exception:
        return repr(url[:80])
