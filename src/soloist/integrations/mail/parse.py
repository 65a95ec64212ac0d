"""A received email, read from its raw bytes into a canonical :class:`Message`.

Mail from the world is often broken: a multipart whose boundary never comes, raw 8-bit
bytes in a From line, a body labelled UTF-8 that is Latin-1, a charset no codec knows, no
Date, a 20 MB attachment, encoded words that decode to a line break. :func:`parse_message`
never raises on any of them. It keeps what it could read and says, one line per problem in
``Message.problems``, what it could not or what it had to guess, so an ``email.received``
event is never lost and never silently wrong.

What it guesses: 8-bit header bytes and undecodable bodies are read as UTF-8 when they
are valid UTF-8 and as Windows-1252 (a superset of Latin-1) otherwise; a Date without a
zone is read as UTC; line breaks inside a decoded header become spaces (a header value must
never turn into headers of its own when the message is answered or forwarded).

Attachments are described (name, type, size, SHA-256) and their bytes dropped;
:func:`attachment_contents` gives them back when a step needs them.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy, utils
from email.headerregistry import BaseHeader
from email.message import Message as RawMessage
from email.parser import BytesParser
from typing import Any

from pydantic import ValidationError

from soloist.integrations.entities import Attachment, Contact, Message, field_path

#: a text or HTML body longer than this is cut (the event would not fit a store row)
MAX_BODY_CHARS = 1_000_000
#: deeper multipart nesting than this is not read (real mail nests a handful of levels)
MAX_DEPTH = 32
#: a header's text (a subject, a List-Id) longer than this is cut
MAX_HEADER_CHARS = 2000
#: headers a playbook may want that have no field of their own
NOTED_HEADERS = ("Sender", "List-Id", "List-Unsubscribe", "Auto-Submitted", "Precedence",
                 "Return-Path")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_MSG_ID = re.compile(r"<[^<>\s]+>")
_SURROGATES = re.compile("[\udc80-\udcff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_ADDRESS_FIELDS = (("From", "from"), ("Reply-To", "reply_to"), ("To", "to"), ("Cc", "cc"),
                   ("Bcc", "bcc"))


def _one_line(text: str) -> str:
    """``text`` as one clean line: control characters become spaces, and raw 8-bit bytes
    the stdlib kept as surrogates are decoded (a surrogate cannot be stored as UTF-8)."""
    if _SURROGATES.search(text):
        text = _from_8bit(text.encode("utf-8", "surrogateescape"))[0]
    return _CONTROLS.sub(" ", text).strip()


def _from_8bit(data: bytes) -> tuple[str, str]:
    """Bytes of no declared charset as text, and the charset that read them."""
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "Windows-1252"


def _unicode_domain(domain: str) -> str:
    """``xn--`` labels as the names they stand for, so an address reads as it was written."""
    if "xn--" not in domain.lower():
        return domain
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


def _defect(defect: Exception) -> str:
    text = str(defect) or (type(defect).__doc__ or type(defect).__name__).strip()
    return text.splitlines()[0].rstrip(".")


#: a header value the fast path of _Reader.text takes as it is: printable ASCII, folded
#: lines, no encoded word (=?charset?...?=)
_PLAIN = re.compile(r"(?!.*=\?)[\x20-\x7e\t]*(?:\r?\n[ \t][\x20-\x7e\t]*)*", re.DOTALL)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_SIMPLE_ITEM = rf"[ \t]*(?:{_ADDR_SPEC}|[A-Za-z0-9 \t_-]*<{_ADDR_SPEC}>)[ \t]*"
#: an address list with nothing the address parser would have to work for: no quotes,
#: comments, groups, encoded words or 8-bit bytes, one line
_SIMPLE_LIST = re.compile(rf"{_SIMPLE_ITEM}(?:,{_SIMPLE_ITEM})*")


def simple_addresses(value: str) -> list[Contact] | None:
    """The contacts of an address header as simple as most are (``Ada <ada@x.org>,
    bob@y.org``), read without the stdlib's address parser, which is slow; None when the
    value is anything less simple (the parser reads it then)."""
    if not _SIMPLE_LIST.fullmatch(value):
        return None
    found: list[Contact] = []
    for item in value.split(","):
        shown, _, rest = item.partition("<")
        email = rest.rstrip().removesuffix(">") if rest else shown.strip()
        local, _, domain = email.partition("@")
        try:
            found.append(Contact(name=" ".join(shown.split()) if rest else "",
                                 email=f"{local}@{_unicode_domain(domain)}"))
        except ValidationError:
            return None  # the parser's path says what is wrong with it
    return found


class _Reader:
    """One message's parse: the problems found so far, shared by every step of it."""

    def __init__(self, message: RawMessage) -> None:
        self.message = message
        self.problems: list[str] = []
        self.raw: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self.raw.setdefault(name.lower(), []).append(value)

    def note(self, problem: str) -> None:
        problem = _one_line(problem)
        if problem not in self.problems:
            self.problems.append(problem)

    # -- headers ----------------------------------------------------------------------------

    def header(self, name: str) -> BaseHeader | None:
        """The first ``name`` header, parsed; 8-bit bytes decoded and its defects noted."""
        values = self.raw.get(name.lower())
        if not values:
            return None
        if len(values) > 1:
            self.note(f"{name} appears {len(values)} times; the first is kept")
        value = "".join(values[0].splitlines())
        if _SURROGATES.search(value):
            value, charset = _from_8bit(value.encode("utf-8", "surrogateescape"))
            self.note(f"{name}: raw 8-bit bytes in the header, read as {charset}")
        try:
            parsed: BaseHeader = policy.default.header_factory(name, value)
        except Exception as error:  # the stdlib's header parser has raised on odd input
            self.note(f"{name}: cannot be parsed ({type(error).__name__}); kept as text")
            parsed = policy.default.header_factory("X-Unparsed", value)
        for defect in parsed.defects:
            self.note(f"{name}: {_defect(defect)}")
        return parsed

    def text(self, name: str) -> str:
        values = self.raw.get(name.lower())
        if values is not None and len(values) == 1 and _PLAIN.fullmatch(values[0]):
            # Printable ASCII with no encoded word: what the header parser would give back
            # is the text unfolded, and it would find no defect (the common case, fast).
            value = "".join(values[0].splitlines())
        else:
            parsed = self.header(name)
            if parsed is None:
                return ""
            value = str(parsed)
        flat = _one_line(value)
        if flat != value.strip():
            self.note(f"{name}: line breaks or control characters replaced by spaces")
        if len(flat) > MAX_HEADER_CHARS:
            self.note(f"{name}: {len(flat)} characters; cut to the first {MAX_HEADER_CHARS}")
            flat = flat[:MAX_HEADER_CHARS]
        return flat

    def ids(self, name: str) -> list[str]:
        value = self.text(name)
        found = _MSG_ID.findall(value)
        if value and not found:
            bare = value.split()
            if len(bare) == 1 and "@" in bare[0]:
                self.note(f"{name}: no angle brackets; read as <{bare[0]}>")
                return [f"<{bare[0]}>"]
            self.note(f"{name}: {value[:80]!r} holds no <message-id>")
        return found

    def contacts(self, name: str) -> list[Contact]:
        values = self.raw.get(name.lower())
        if values is not None and len(values) == 1:
            simple = simple_addresses(values[0])
            if simple is not None:
                return simple
        return self.parsed_contacts(name)

    def parsed_contacts(self, name: str) -> list[Contact]:
        """The addresses of a header as the stdlib's address parser reads it."""
        parsed = self.header(name)
        addresses: Any = getattr(parsed, "addresses", ())
        found = []
        for address in addresses:
            email = _one_line(f"{address.username}@{_unicode_domain(address.domain)}")
            if not address.username or not address.domain:
                self.note(f"{name}: {str(address)!r} is not an email address; left out")
                continue
            try:
                found.append(Contact(name=_one_line(address.display_name), email=email))
            except ValidationError:
                self.note(f"{name}: {email!r} is not an email address; left out")
        return found

    def date(self) -> datetime | None:
        values = self.raw.get("date")
        if values is not None and len(values) == 1 and _PLAIN.fullmatch(values[0]):
            try:  # what the Date header's own parser calls, without the parser around it
                quick = utils.parsedate_to_datetime("".join(values[0].splitlines()))
            except (TypeError, ValueError):
                pass
            else:
                if quick.tzinfo is not None:
                    return quick
        parsed = self.header("Date")
        if parsed is None:
            self.note("no Date header")
            return None
        when: datetime | None = getattr(parsed, "datetime", None)
        if when is None:
            if not parsed.defects:  # the parser's own note says it already
                self.note(f"Date: {str(parsed)[:80]!r} is not a date")
            return None
        if when.tzinfo is None:
            self.note("Date: no time zone; read as UTC")
            when = when.replace(tzinfo=UTC)
        return when

    # -- body -------------------------------------------------------------------------------

    def parts(self) -> Iterator[tuple[RawMessage, str]]:
        """Each leaf part, depth first in order, with its content type; a forwarded
        message (message/rfc822) is one leaf, as a mail client shows it."""
        stack: list[tuple[RawMessage, int]] = [(self.message, 0)]
        while stack:
            part, depth = stack.pop()
            kind = part.get_content_type()
            if part.is_multipart() and kind != "message/rfc822":
                if depth >= MAX_DEPTH:
                    self.note(f"multipart nested deeper than {MAX_DEPTH} levels; not read")
                    continue
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend((child, depth + 1) for child in reversed(children)
                                 if isinstance(child, RawMessage))
                self.defects(part)
                continue
            if not _MIME_TYPE.fullmatch(kind):
                self.note(f"{_one_line(kind)[:80]!r} is not a MIME type; read as "
                          "application/octet-stream")
                kind = "application/octet-stream"
            if kind.startswith("multipart/"):
                self.defects(part)
                self.note(f"{kind} without its parts (broken boundary); read as text")
                kind = "text/plain"
            yield part, kind

    def defects(self, part: RawMessage) -> None:
        """Note what the parser found wrong in ``part`` (decoding its payload can add to
        them, so a leaf's are read after its content)."""
        kind = part.get_content_type()
        for defect in part.defects:
            self.note(f"{kind}: {_defect(defect)}")
        if part is not self.message:  # the message's own headers are read one by one
            for name, value in part.raw_items():
                if _SURROGATES.search(value):
                    self.note(f"{kind}: raw 8-bit bytes in its {name} header")

    def body_text(self, part: RawMessage, kind: str) -> str:
        text = self._decoded(part, kind).replace("\r\n", "\n")
        if _UNSTORABLE.search(text):
            # PostgreSQL's text holds no NUL, and no store holds a lone surrogate as UTF-8
            self.note(f"{kind}: NUL or lone surrogate characters replaced by U+FFFD")
            text = _UNSTORABLE.sub("\ufffd", text)
        return text

    def _decoded(self, part: RawMessage, kind: str) -> str:
        data = _payload(part)
        try:
            charset = part.get_content_charset() or "us-ascii"
        except Exception:  # a malformed parameter list
            charset = "us-ascii"
        try:
            codec = codecs.lookup(charset).name
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            text, read_as = _from_8bit(data)
            self.note(f"{kind}: unknown charset {charset!r}; read as {read_as}")
            return text
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            text, read_as = _from_8bit(data)
            self.note(f"{kind}: not valid {charset} as labelled; read as {read_as}")
            return text
        except Exception:  # some codecs raise other errors on bad input
            text, read_as = _from_8bit(data)
            self.note(f"{kind}: cannot be decoded as {charset}; read as {read_as}")
            return text


def _payload(part: RawMessage) -> bytes:
    """A leaf's content, transfer encoding undone (what the stdlib can of broken base64)."""
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        try:
            if isinstance(inner, RawMessage):
                return bytes(inner.as_bytes(policy=policy.default))
        except Exception:  # a forwarded message too broken to write back out
            pass
        return str(inner).encode("utf-8", "surrogateescape")
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    text = part.get_payload()
    return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else b""


def _filename(part: RawMessage) -> str:
    """The part's file name as policy.default reads it (RFC 2231 and encoded words
    decoded): the Content-Disposition's ``filename``, else the Content-Type's ``name``."""
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        # As stored: compat32's get() would turn 8-bit bytes into replacement characters.
        value = next((v for k, v in part.raw_items() if k.lower() == header.lower()), None)
        if value is None or param not in value.lower():
            continue
        text = "".join(value.splitlines())
        if _SURROGATES.search(text):
            text = _from_8bit(text.encode("utf-8", "surrogateescape"))[0]
        parsed = policy.default.header_factory(header, text)
        found = getattr(parsed, "params", {}).get(param)
        if found:
            return str(found)
    return ""


def _name(part: RawMessage, reader: _Reader) -> str:
    try:
        raw = _filename(part)
    except Exception:  # the stdlib has raised on malformed RFC 2231 parameters
        reader.note(f"{part.get_content_type()}: its file name cannot be read")
        return ""
    name = _one_line(raw)
    if "\ufffd" in name:
        # RFC 2231 names in a charset no codec knows are decoded with replacements
        reader.note(f"{part.get_content_type()}: its file name {name!r} has characters "
                    "that could not be decoded")
    return name


def _disposition(part: RawMessage) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _read(raw: bytes, keep: bool) -> tuple[Message, list[bytes]]:
    # The tree is read with compat32, whose accessors parse a header with a regular
    # expression; headers that matter are parsed one by one, with policy.default, above.
    reader = _Reader(BytesParser(policy=policy.compat32).parsebytes(bytes(raw)))
    fields: dict[str, Any] = {}
    ids = reader.ids("Message-ID")
    if ids:
        fields["message_id"] = ids[0]
    else:
        reader.note("no Message-ID")
    replied = reader.ids("In-Reply-To")
    if replied:
        fields["in_reply_to"] = replied[0]
    fields["references"] = reader.ids("References")
    for header, field in _ADDRESS_FIELDS:
        contacts = reader.contacts(header)
        if field == "from":
            fields["from"] = contacts[0] if contacts else None
            if not contacts:
                reader.note("no From address")
        else:
            fields[field] = contacts
    fields["subject"] = reader.text("Subject")
    fields["date"] = reader.date()
    fields["headers"] = {name: reader.text(name)
                         for name in NOTED_HEADERS if reader.raw.get(name.lower())}
    texts: list[str] = []
    html: str | None = None
    attachments: list[Attachment] = []
    contents: list[bytes] = []
    for part, kind in reader.parts():
        name = _name(part, reader)
        disposition = _disposition(part)
        body = kind in ("text/plain", "text/html") and disposition != "attachment" and not name
        if body and kind == "text/plain":
            texts.append(reader.body_text(part, kind))
            reader.defects(part)
            continue
        if body and html is None:
            html = reader.body_text(part, kind)
            reader.defects(part)
            continue
        data = _payload(part)
        reader.defects(part)
        attachments.append(Attachment(
            name=name, content_type=_one_line(kind), size=len(data),
            sha256=hashlib.sha256(data).hexdigest()))
        if keep:
            contents.append(data)
    fields["text"] = _capped(reader, "text/plain", "\n".join(texts)) if texts else None
    fields["html"] = _capped(reader, "text/html", html) if html is not None else None
    fields["attachments"] = attachments
    return _entity(fields, reader), contents


def _capped(reader: _Reader, kind: str, text: str) -> str:
    if len(text) > MAX_BODY_CHARS:
        reader.note(f"{kind}: {len(text)} characters; cut to the first {MAX_BODY_CHARS}")
        return text[:MAX_BODY_CHARS]
    return text


def _entity(fields: dict[str, Any], reader: _Reader) -> Message:
    """The message, leaving out (and noting) any field the model still refuses."""
    for _ in range(len(fields)):
        try:
            return Message.model_validate({**fields, "problems": reader.problems})
        except ValidationError as error:
            loc = error.errors(include_url=False)[0]["loc"]
            reader.note(f"{field_path(loc)}: cannot be kept; left out")
            fields.pop(str(loc[0]), None)
    return Message(problems=tuple(reader.problems))


def parse_message(raw: bytes) -> Message:
    """``raw`` (a message as a server hands it over) as a Message; never raises."""
    try:
        return _read(raw, keep=False)[0]
    except Exception as error:  # the last guard: an event is kept whatever the bytes are
        return Message(problems=(f"the message cannot be parsed: {type(error).__name__}: "
                                 f"{_one_line(str(error))[:200]}",))


def attachment_contents(raw: bytes) -> list[tuple[Attachment, bytes]]:
    """Each attachment of ``raw`` with its bytes, in the order of ``Message.attachments``
    (none when :func:`parse_message` could not read the message at all)."""
    try:
        message, contents = _read(raw, keep=True)
    except Exception:  # as parse_message: its Message then lists no attachment either
        return []
    return list(zip(message.attachments, contents, strict=True))
