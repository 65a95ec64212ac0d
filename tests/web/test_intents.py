"""How the inbox shows an intent: as the email, invoice or calendar event it will be."""

from __future__ import annotations

from soloist.interfaces.web.intents import Line, show


def test_an_email_shows_recipients_subject_and_body() -> None:
    shown = show("gmail.reply", {"to": ["a@x.org", {"name": "B", "email": "b@x.org"}],
                                 "cc": "c@x.org", "subject": "Re: hi", "body": "Thanks!"})
    assert shown.kind == "email"
    assert dict(shown.fields) == {"To": "a@x.org, B <b@x.org>", "Cc": "c@x.org",
                                  "Subject": "Re: hi"}
    assert shown.body == "Thanks!"


def test_an_invoice_shows_its_lines_and_total() -> None:
    shown = show("stripe.create_invoice", {
        "customer": "cus_1", "currency": "eur",
        "lines": [{"description": "Consulting", "quantity": 3, "amount": 100},
                  {"description": "Travel", "amount": 40}]})
    assert shown.kind == "invoice"
    assert shown.lines == [Line("Consulting", 3, 100), Line("Travel", 1, 40)]
    assert shown.total == 340
    assert dict(shown.fields)["Customer"] == "cus_1"


def test_a_calendar_event_shows_title_and_times() -> None:
    shown = show("calendar.create_event", {"summary": "Review", "start": "2026-12-02T10:00",
                                           "end": "2026-12-02T11:00"})
    assert shown.kind == "calendar"
    fields = dict(shown.fields)
    assert (fields["Title"], fields["Start"], fields["End"]) == (
        "Review", "2026-12-02T10:00", "2026-12-02T11:00")


def test_anything_else_is_its_tool_and_arguments() -> None:
    shown = show("file.append", {"path": "a.txt", "line": "hi"})
    assert (shown.kind, shown.tool, shown.args) == ("other", "file.append",
                                                    {"path": "a.txt", "line": "hi"})
    assert show("mail.send", "not a mapping").kind == "other"
