"""An intent as it will happen, for the person deciding about it: an email with its
recipients, subject and body; an invoice with its lines and amounts; a calendar event with
its title and times; anything else as its tool and arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EMAIL = (".send", ".reply", ".send_email", ".reply_email")
INVOICE = (".create_invoice", ".invoice", ".send_invoice", ".create_invoice_item")
CALENDAR = (".create_event", ".update_event", ".event", ".schedule")


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Any
    amount: Any


@dataclass(frozen=True)
class Shown:
    kind: str  # email | invoice | calendar | other
    tool: str
    args: Any
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    lines: list[Line] = field(default_factory=list)
    total: Any = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        name, address = value.get("name"), value.get("email") or value.get("address")
        return f"{name} <{address}>" if name and address else str(address or name or value)
    return str(value)


def _pick(args: dict[str, Any], *names: str) -> Any:
    for name in names:
        if args.get(name) not in (None, "", []):
            return args[name]
    return None


def _lines(args: dict[str, Any]) -> list[Line]:
    raw = _pick(args, "lines", "items", "line_items")
    if not isinstance(raw, list):
        amount = _pick(args, "amount", "total", "unit_amount")
        return [Line(_text(_pick(args, "description", "memo")), 1, amount)] if amount else []
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append(Line(_text(_pick(item, "description", "name", "title")),
                            _pick(item, "quantity", "qty") or 1,
                            _pick(item, "amount", "unit_amount", "price", "total")))
        else:
            out.append(Line(_text(item), 1, None))
    return out


def _total(lines: list[Line]) -> Any:
    total = 0.0
    for line in lines:
        if not isinstance(line.amount, int | float) or not isinstance(line.quantity,
                                                                      int | float):
            return None
        total += line.amount * line.quantity
    return total


def show(tool: str, args: Any) -> Shown:
    if not isinstance(args, dict):
        return Shown("other", tool, args)
    if tool.endswith(EMAIL):
        fields = [("To", _text(_pick(args, "to", "recipients"))),
                  ("Cc", _text(args.get("cc"))),
                  ("Subject", _text(_pick(args, "subject", "title")))]
        body = _text(_pick(args, "body", "text", "content", "message"))
        return Shown("email", tool, args, fields, body)
    if tool.endswith(INVOICE):
        lines = _lines(args)
        fields = [("Customer", _text(_pick(args, "customer", "customer_email", "to"))),
                  ("Currency", _text(args.get("currency")))]
        return Shown("invoice", tool, args, fields, _text(args.get("memo")), lines,
                     _total(lines))
    if tool.endswith(CALENDAR):
        fields = [("Title", _text(_pick(args, "title", "summary", "name"))),
                  ("Start", _text(_pick(args, "start", "starts_at", "dtstart"))),
                  ("End", _text(_pick(args, "end", "ends_at", "dtend"))),
                  ("Where", _text(args.get("location"))),
                  ("Attendees", _text(args.get("attendees")))]
        return Shown("calendar", tool, args, fields, _text(args.get("description")))
    return Shown("other", tool, args)
