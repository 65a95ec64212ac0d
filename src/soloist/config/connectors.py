"""``[connectors.NAME]``: how the workspace reaches email, a calendar, billing, git and
webhooks, one strict table per connector whose ``kind`` says which settings it takes.

::

    [connectors.mail]
    kind = "email"
    smtp_host = "smtp.example.com"
    imap_host = "imap.example.com"
    username = "ada@example.com"
    password = "secret:MAIL_PASSWORD"
    from_address = "ada@example.com"
    rate = 5                      # sends per second, shared by every worker
    burst = 10

Every kind takes the limits of :class:`ConnectorBase` (``rate`` calls a second and at most
``burst`` in any one second, a ``concurrency`` cap, an inbound ``backlog``, a
``timeout``). A credential is only ever ``secret:NAME``
(:mod:`soloist.config.references`); whether that secret is set is known only with the
store, so ``soloist deploy`` checks it (:func:`soloist.control.checks.connector_problems`).
The connectors that use these tables are built in the integrations plane.
"""

from __future__ import annotations

import math
import re
import types
import zoneinfo
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from soloist.config.base import Section, check_name
from soloist.config.durations import PositiveDuration
from soloist.config.hosts import check_host
from soloist.config.references import SecretMarker, SecretReference

DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL = 60.0
DEFAULT_BACKLOG = 1000
DEFAULT_TOLERANCE = 300.0
Security = Literal["starttls", "tls", "none"]
#: the port each protocol listens on, by its security
SMTP_PORTS: dict[str, int] = {"tls": 465, "starttls": 587, "none": 25}
IMAP_PORTS: dict[str, int] = {"tls": 993, "starttls": 143, "none": 143}

_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)
_BAD_REF = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|//")  # what git check-ref-format refuses


def _port(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"expected a port number from 1 to 65535, not {value!r}")
    return value


def _filled(value: str) -> str:
    if not value.strip():
        raise ValueError("cannot be empty")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address such as ada@example.com")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} must be an http:// or https:// URL")
    if parts.password is not None:
        raise ValueError("a URL here carries no password: give it as password = "
                         "\"secret:NAME\"")
    try:
        check_host(parts.hostname)
    except ValueError:
        raise ValueError(f"{value!r} names no valid host") from None
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone; use an IANA name such as "
                         "Europe/Paris or UTC") from None
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError(f"{value!r} is not a currency; use a three-letter ISO code such "
                         "as usd or eur")
    return value.lower()


def _remote(value: str) -> str:
    if not value.strip():
        raise ValueError("a remote cannot be empty; give a URL or a path")
    if value.startswith("-"):
        raise ValueError(f"{value!r} is not a remote: it starts with '-'")
    if "://" in value and urlsplit(value).password is not None:
        raise ValueError("a remote URL carries no password: store it with `soloist secret "
                         "set NAME` instead")
    return value


def _branch(value: str) -> str:
    if (not value or value.startswith(("-", "/")) or value.endswith(("/", ".", ".lock"))
            or _BAD_REF.search(value) or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise ValueError(f"{value!r} is not a branch name git accepts")
    return value


def _header(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


def _connector_name(value: str) -> str:
    return check_name(value, "connector")


def _hook_path(value: str) -> str:
    return check_name(value, "webhook path")


Text = Annotated[str, AfterValidator(_filled)]
Host = Annotated[str, AfterValidator(check_host)]
Port = Annotated[int, BeforeValidator(_port)]
Address = Annotated[str, AfterValidator(_address)]
HttpURL = Annotated[str, AfterValidator(_http_url)]
ConnectorName = Annotated[str, AfterValidator(_connector_name)]


class ConnectorBase(Section):
    """What every kind takes: the limits the workers share, and how long a call may take."""

    #: calls per second, every worker together (a token bucket); unset: no limit
    rate: float | None = Field(default=None, gt=0)
    #: the most calls in any one second; unset: ``rate`` rounded up
    burst: int | None = Field(default=None, ge=1)
    #: calls in flight at once, every worker together; unset: no cap
    concurrency: int | None = Field(default=None, ge=1)
    #: received events waiting to be processed before the source is told to wait
    backlog: int = Field(default=DEFAULT_BACKLOG, ge=1)
    timeout: PositiveDuration = DEFAULT_TIMEOUT

    @model_validator(mode="after")
    def _burst_needs_a_rate(self) -> Self:
        if self.burst is not None and self.rate is None:
            raise ValueError("burst: applies only with a rate")
        if self.burst is not None and self.rate is not None and self.burst < self.rate:
            raise ValueError(f"burst: {self.burst} calls in a second is fewer than the rate "
                             f"of {self.rate:g} a second; make it at least "
                             f"{math.ceil(self.rate)}")
        return self

    @property
    def bucket(self) -> tuple[float, int] | None:
        """(rate, burst) of the token bucket, or None without a rate."""
        if self.rate is None:
            return None
        return self.rate, self.burst or max(1, math.ceil(self.rate))

    def secrets(self) -> dict[str, str]:
        """The ``secret:NAME`` settings of this table, by key."""
        return {key: value for key in secret_fields(type(self))
                if isinstance(value := getattr(self, key), str)}


class EmailConnector(ConnectorBase):
    """Sends over SMTP; with an IMAP account, also receives, and files what it sends in
    ``sent_folder`` (how a send cut short by a crash is proven to have happened)."""

    kind: Literal["email"]
    smtp_host: Host
    smtp_port: Port | None = None  # unset: by smtp_security (465, 587, 25)
    smtp_security: Security = "starttls"
    imap_host: Host | None = None
    imap_port: Port | None = None  # unset: by imap_security (993, 143)
    imap_security: Security = "tls"
    username: Text
    password: SecretReference
    from_address: Address
    sent_folder: Text = "Sent"
    inbox_folder: Text = "INBOX"
    poll_interval: PositiveDuration = DEFAULT_POLL
    #: the first poll ingests the mail already in the inbox; false: only what comes after
    read_existing: bool = False

    @model_validator(mode="after")
    def _imap_settings_need_a_host(self) -> Self:
        imap_only = {"imap_port", "imap_security", "sent_folder", "inbox_folder",
                     "poll_interval", "read_existing"}
        given = sorted(self.model_fields_set & imap_only)
        if self.imap_host is None and given:
            raise ValueError(f"{given[0]}: applies only with an imap_host")
        return self

    @property
    def smtp(self) -> tuple[str, int]:
        return self.smtp_host, self.smtp_port or SMTP_PORTS[self.smtp_security]

    @property
    def imap(self) -> tuple[str, int] | None:
        if self.imap_host is None:
            return None
        return self.imap_host, self.imap_port or IMAP_PORTS[self.imap_security]


class CalendarConnector(ConnectorBase):
    """A CalDAV account; ``calendar`` picks one of its calendars by name or path."""

    kind: Literal["calendar"]
    url: HttpURL
    username: Text
    password: SecretReference
    calendar: Text | None = None  # unset: the account's first calendar
    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    poll_interval: PositiveDuration = DEFAULT_POLL
    #: false: find changes by the ctag and ETags, for a server whose sync REPORT is broken
    sync_tokens: bool = True


class BillingConnector(ConnectorBase):
    """Stripe, or a Stripe-compatible server at ``base_url`` (a local one in tests)."""

    kind: Literal["billing"]
    provider: Literal["stripe"] = "stripe"
    api_key: SecretReference
    base_url: HttpURL | None = None
    webhook_secret: SecretReference | None = None  # unset: no billing events come in
    currency: Annotated[str, AfterValidator(_currency)]


class GitConnector(ConnectorBase):
    """A git remote (a URL, ``user@host:path`` or a folder) and the branch it works on."""

    kind: Literal["git"]
    remote: Annotated[str, AfterValidator(_remote)]
    branch: Annotated[str, AfterValidator(_branch)] = "main"
    author_name: Text
    author_email: Address
    workdir: Text | None = None  # unset: a folder of its own under .soloist/
    poll_interval: PositiveDuration = DEFAULT_POLL
    #: for an http(s) remote that asks for a login (a token works as the password)
    username: Text | None = None
    password: SecretReference | None = None


class WebhookConnector(ConnectorBase):
    """Deliveries in at ``/hooks/PATH``, signed with HMAC-SHA256 of ``secret``, refused
    outside ``tolerance`` of their timestamp, and deduplicated on ``dedupe_header``."""

    kind: Literal["webhook"]
    secret: SecretReference
    tolerance: PositiveDuration = DEFAULT_TOLERANCE
    dedupe_header: Annotated[str, AfterValidator(_header)] = "Webhook-Id"
    path: Annotated[str, AfterValidator(_hook_path)] | None = None  # unset: the name
    #: where ``NAME.post`` delivers, signed the same way; unset: it only receives
    url: HttpURL | None = None


KINDS: dict[str, type[ConnectorBase]] = {
    "email": EmailConnector, "calendar": CalendarConnector, "billing": BillingConnector,
    "git": GitConnector, "webhook": WebhookConnector,
}

ConnectorSection = Annotated[
    EmailConnector | CalendarConnector | BillingConnector | GitConnector | WebhookConnector,
    Field(discriminator="kind"),
]


def _is_secret(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return any(isinstance(m, SecretMarker) for m in annotation.__metadata__)
    if origin in (Union, types.UnionType):
        return any(_is_secret(arg) for arg in get_args(annotation))
    return False


def secret_fields(model: type[ConnectorBase]) -> tuple[str, ...]:
    """The keys of ``model`` that hold a ``secret:NAME``."""
    return tuple(name for name, field in model.model_fields.items()
                 if _is_secret(field.annotation)
                 or any(isinstance(m, SecretMarker) for m in field.metadata))
