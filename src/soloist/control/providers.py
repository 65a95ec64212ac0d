"""What LLM providers and embedders share: their API key, and their failures classified.

An ``api_key`` is a literal or ``secret:NAME``, resolved by :func:`resolve_api_key`.
Failures map to Soloist's failure kinds:

* timeouts, connection errors, 408, 429 and every 5xx -> :class:`TransientError`, with
  ``retry_after`` (seconds) taken from ``Retry-After-Ms`` or ``Retry-After`` when present;
* every other 4xx, and a reply that cannot be understood -> :class:`DeterministicError`.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any

from soloist.config.references import REFERENCE
from soloist.errors import ConfigError, DeterministicError, StepFailure, TransientError

TRANSIENT_STATUSES = frozenset({408, 429})


def resolve_api_key(value: str | None, resolve_secret: Callable[[str], str] | None,
                    provider: str) -> str | None:
    """The key to send: ``value`` itself, or the value of the secret it refers to.

    ``resolve_secret`` takes the secret's NAME and returns its value, as
    :meth:`SecretService.get <soloist.control.secrets.SecretService.get>` does. A resolver
    that hands back the name or the reference instead (one that expects ``secret:NAME``
    and returns anything else unchanged) would send that to the provider as the key: it
    is refused, never sent.
    """
    if value is None or not value.startswith(REFERENCE):
        return value
    name = value[len(REFERENCE):]
    if resolve_secret is None:
        raise ConfigError(f"provider {provider}: api_key refers to secret {name!r}, "
                          "but no secret store is available")
    resolved = resolve_secret(name)
    if resolved in (value, name):
        raise ConfigError(f"provider {provider}: api_key refers to secret {name!r}, "
                          "which the secret store did not resolve")
    return resolved


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None
                      ) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status >= 500


def status_failure(provider: str, status: int, message: str,
                   headers: Mapping[str, str] | None = None) -> StepFailure:
    """The failure for an HTTP error status returned by ``provider``."""
    detail = message.strip() or "no details"
    if is_transient_status(status):
        retry_after = parse_retry_after(headers)
        what = "is rate limiting" if status == 429 else f"answered {status}"
        return TransientError(f"{provider} {what}: {detail}", retry_after=retry_after)
    hint = ""
    if status in (401, 403):
        hint = " (check the provider's api_key)"
    elif status == 404:
        hint = " (check the model name and base_url)"
    return DeterministicError(f"{provider} refused the request with {status}{hint}: {detail}")


def timeout_failure(provider: str, detail: str = "") -> TransientError:
    return TransientError(f"{provider} did not answer in time" + (f": {detail}" if detail
                                                                   else ""))


def connection_failure(provider: str, detail: str = "") -> TransientError:
    return TransientError(f"cannot reach {provider}" + (f": {detail}" if detail else ""))


def invalid_reply(provider: str, detail: str) -> DeterministicError:
    return DeterministicError(f"{provider} sent a reply that cannot be understood: {detail}")


def sdk_failure(provider: str, exc: Exception, sdk: Any) -> StepFailure:
    """The failure for an error of the openai or anthropic SDK (the same generated error
    classes in each: timeout, connection, status, and their base)."""
    if isinstance(exc, sdk.APITimeoutError):
        return timeout_failure(provider, str(exc))
    if isinstance(exc, sdk.APIConnectionError):
        return connection_failure(provider, str(exc))
    if isinstance(exc, sdk.APIStatusError):
        return status_failure(provider, exc.status_code, error_message(exc.body, exc.message),
                              dict(exc.response.headers))
    return invalid_reply(provider, str(exc))


def error_message(body: object, fallback: str) -> str:
    """The ``message`` of an OpenAI or Anthropic error body, else ``fallback``."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return fallback
