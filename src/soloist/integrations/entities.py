"""The canonical entities: what a connector's payloads become, whatever the provider.

Each entity is a frozen pydantic model. A connector maps its provider's payload to a
plain mapping of these fields and hands it to :func:`load`, which either returns the entity
or raises :class:`~soloist.errors.InvalidPayload` naming the first field that failed
(``the payload does not map to an Invoice: lines[1].quantity: ...``): a payload that cannot
be mapped is a deterministic failure, since asking the provider again gives the same one.

Rules every entity keeps:

- times are time-zone aware (a naive datetime is refused rather than guessed);
- money is an integer count of the currency's minor unit (cents), never a float;
- text that ends up in a header (names, addresses, subjects, ids, file names) holds no line
  break or NUL, so no value can ever become a header of its own;
- collections are tuples, so an entity is immutable all the way down (its JSON form is a
  list, as usual: ``entity.model_dump(mode="json", by_alias=True)``).

Bytes are kept out: an email attachment is its name, type, size and SHA-256; its content
is read from the raw message when it is needed
(:func:`soloist.integrations.mail.parse.attachment_contents`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from soloist.errors import InvalidPayload

_BREAKS = re.compile(r"[\r\n\x00]")
_EMAIL = re.compile(r"[^@\s<>,;\"\x00-\x1f\x7f]+@[^@\s<>,;\"\x00-\x1f\x7f]+")
_SHA = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CURRENCY = re.compile(r"[a-z]{3}")
_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*?)\s*")


def _one_line(value: str) -> str:
    if _BREAKS.search(value):
        raise ValueError("must be one line (no line break or NUL)")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _message_id(value: str) -> str:
    """``<left@right>``: the angle brackets are part of the id, as in the header."""
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    if not re.fullmatch(r"<[^<>\s]+>", value):
        raise ValueError(f"{value!r} is not a Message-ID")
    return value


def _sha(value: str) -> str:
    value = value.lower()
    if not _SHA.fullmatch(value):
        raise ValueError("must be a full commit id (40 or 64 hex digits)")
    return value


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError("must be 64 lower-case hex digits")
    return value


def _currency(value: str) -> str:
    value = value.lower()
    if not _CURRENCY.fullmatch(value):
        raise ValueError("must be a three-letter ISO 4217 code such as eur")
    return value


Line = Annotated[str, AfterValidator(_one_line)]
EmailAddress = Annotated[str, AfterValidator(_email)]
MessageId = Annotated[str, AfterValidator(_message_id)]


class Entity(BaseModel):
    """Frozen, and no field it does not know (a mapping's typo fails loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True,
                              populate_by_name=True)


# -- people and mail ------------------------------------------------------------------------


class Contact(Entity):
    """A person or mailbox: ``Ada Lovelace <ada@example.com>``."""

    name: Line = ""
    email: EmailAddress


class Attachment(Entity):
    """A file carried by a message: what it is, never its bytes."""

    name: Line = ""
    content_type: Line = "application/octet-stream"
    size: int = Field(ge=0)
    sha256: Annotated[str, AfterValidator(_sha256)]


class Message(Entity):
    """An email, sent or received.

    ``from_`` is ``from`` in a payload and in JSON (``by_alias=True``). ``date`` is
    ``None`` when the message had none that could be read; ``problems`` says, one line each,
    what could not be parsed (a received message is kept whatever it holds).
    """

    message_id: MessageId | None = None
    in_reply_to: MessageId | None = None
    references: tuple[MessageId, ...] = ()
    from_: Contact | None = Field(default=None, alias="from")
    reply_to: tuple[Contact, ...] = ()
    to: tuple[Contact, ...] = ()
    cc: tuple[Contact, ...] = ()
    bcc: tuple[Contact, ...] = ()
    subject: Line = ""
    date: AwareDatetime | None = None
    text: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    #: the headers a playbook may need that have no field of their own (List-Id, ...)
    headers: dict[str, Line] = Field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def thread(self) -> tuple[str, ...]:
        """The References a reply to this message carries: its own, then this one's id."""
        earlier = self.references or ((self.in_reply_to,) if self.in_reply_to else ())
        return (*earlier, self.message_id) if self.message_id else earlier


# -- calendar -------------------------------------------------------------------------------


class EventFields(Entity):
    """What an event says, whether it is read from a calendar or about to be written.

    An all-day event still has aware ``start`` and ``end`` (midnight in its zone; ``end``
    is the exclusive next day, as iCalendar writes it).
    """

    summary: Line = ""
    start: AwareDatetime
    end: AwareDatetime
    all_day: bool = False
    location: Line = ""
    description: str = ""
    attendees: tuple[Contact, ...] = ()
    #: an RFC 5545 RRULE value, such as ``FREQ=WEEKLY;COUNT=10``
    rrule: Line | None = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Self:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


class CalendarEvent(EventFields):
    """One event (or one occurrence of a recurring one, named by ``recurrence_id``)."""

    uid: Line = Field(min_length=1)
    recurrence_id: Line | None = None
    etag: Line | None = None


# -- billing --------------------------------------------------------------------------------


class InvoiceLine(Entity):
    """``quantity`` times ``unit_amount``, in the invoice currency's minor unit."""

    description: str = ""
    quantity: int = Field(ge=0)
    unit_amount: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount


class Invoice(Entity):
    """An invoice with its lines; ``total`` is the provider's (taxes and discounts in)."""

    id: Line = Field(min_length=1)
    customer: Line = Field(min_length=1)
    currency: Annotated[str, AfterValidator(_currency)]
    lines: tuple[InvoiceLine, ...] = ()
    total: int
    status: Literal["draft", "open", "paid", "void", "uncollectible"]
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)


# -- git ------------------------------------------------------------------------------------


class Commit(Entity):
    """A commit. ``trailers`` maps each trailer key to its values in order (a key such as
    ``Co-authored-by`` may appear more than once)."""

    sha: Annotated[str, AfterValidator(_sha)]
    author: Line
    email: Line  # not EmailAddress: git records whatever the author configured
    date: AwareDatetime
    message: str
    trailers: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def trailer(self, key: str) -> str | None:
        """The last value of a trailer (``Soloist-Intent``), or ``None``; keys match as git
        matches them, ignoring case."""
        for name, values in self.trailers.items():
            if name.lower() == key.lower() and values:
                return values[-1]
        return None


def trailers_of(message: str) -> dict[str, tuple[str, ...]]:
    """The trailers of a commit message: the ``Key: value`` lines of its last paragraph
    (when that paragraph is not the subject and every non-continuation line is one)."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in paragraphs[-1].splitlines():
        match = _TRAILER.fullmatch(line)
        if match:
            last = found.setdefault(match.group(1), [])
            last.append(match.group(2))
        elif line[:1] in (" ", "\t") and last:
            last[-1] = f"{last[-1]} {line.strip()}"
        else:
            return {}
    return {key: tuple(values) for key, values in found.items()}


# -- mapping --------------------------------------------------------------------------------

E = TypeVar("E", bound=Entity)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a person writes it: ``lines[1].quantity``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(the payload itself)"


def load(entity: type[E], payload: Mapping[str, Any]) -> E:
    """``payload`` as an ``entity``, or :class:`InvalidPayload` naming the field."""
    try:
        return entity.model_validate(payload)
    except ValidationError as error:
        problems = []
        for detail in error.errors(include_url=False):
            message = detail["msg"].removeprefix("Value error, ")
            problems.append(f"{field_path(detail['loc'])}: {message[:1].lower()}{message[1:]}")
        first = field_path(error.errors(include_url=False)[0]["loc"])
        article = "an" if entity.__name__[0] in "AEIOU" else "a"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidPayload(
            f"the payload does not map to {article} {entity.__name__}: {problems[0]}{more}",
            entity=entity.__name__, field=first, problems=problems) from None
