"""The canonical entities: frozen, time-zone aware, and a payload that does not map is a
deterministic failure naming its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from soloist.errors import DeterministicError, InvalidPayload, classify
from soloist.integrations.entities import (
    CalendarEvent,
    Commit,
    Contact,
    Invoice,
    Message,
    load,
    trailers_of,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


def invoice(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "in_1", "customer": "cus_1", "currency": "EUR", "total": 2500,
        "status": "open", "metadata": {"soloist_intent": "k1"},
        "lines": [{"description": "Audit", "quantity": 2, "unit_amount": 1000},
                  {"description": "Travel", "quantity": 1, "unit_amount": 500}]}
    payload.update(changes)
    return payload


def test_an_invoice_maps_with_its_lines_in_minor_units() -> None:
    loaded = load(Invoice, invoice())
    assert loaded.currency == "eur"
    assert [line.amount for line in loaded.lines] == [2000, 500]
    assert loaded.subtotal == 2500 == loaded.total
    assert loaded.metadata == {"soloist_intent": "k1"}


@pytest.mark.parametrize(("payload", "field", "words"), [
    (invoice(lines=[{"quantity": 1, "unit_amount": 5}, {"quantity": "two", "unit_amount": 1}]),
     "lines[1].quantity", "valid integer"),
    (invoice(lines=[{"quantity": 1, "unit_amount": 9.99}]), "lines[0].unit_amount",
     "fractional part"),
    (invoice(currency="euro"), "currency", "three-letter"),
    (invoice(status="settled"), "status", "'paid'"),
    ({k: v for k, v in invoice().items() if k != "total"}, "total", "required"),
    (invoice(amount_due=3), "amount_due", "not permitted"),
])
def test_a_payload_that_does_not_map_names_the_field(payload: dict[str, Any], field: str,
                                                     words: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        load(Invoice, payload)
    error = caught.value
    assert isinstance(error, DeterministicError) and classify(error) == "deterministic"
    assert (error.entity, error.field) == ("Invoice", field)
    assert error.message.startswith(f"the payload does not map to an Invoice: {field}: ")
    assert words in error.message
    assert "\n" not in error.message


def test_every_failing_field_is_a_problem_line() -> None:
    with pytest.raises(InvalidPayload) as caught:
        load(Invoice, invoice(currency="x", status="nope"))
    assert [p.split(":")[0] for p in caught.value.problems] == ["currency", "status"]
    assert caught.value.message.endswith("(and 1 more)")


def test_entities_are_frozen() -> None:
    contact = Contact(name="Ada", email="ada@example.com")
    with pytest.raises(ValidationError):
        contact.name = "Grace"  # type: ignore[misc]


def test_times_must_know_their_zone() -> None:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    event = CalendarEvent(uid="u1", start=start, end=start + timedelta(hours=1))
    assert event.end.utcoffset() == timedelta(hours=1)
    with pytest.raises(InvalidPayload) as caught:
        load(CalendarEvent, {"uid": "u1", "start": "2026-03-01T09:00:00",
                             "end": "2026-03-01T10:00:00+01:00"})
    assert caught.value.field == "start" and "timezone" in caught.value.message
    with pytest.raises(InvalidPayload, match="end is before start"):
        load(CalendarEvent, {"uid": "u1", "start": start, "end": start - timedelta(hours=1)})


def test_an_all_day_event_with_attendees_and_recurrence() -> None:
    event = load(CalendarEvent, {
        "uid": "u2", "summary": "Offsite", "start": "2026-03-02T00:00:00Z",
        "end": "2026-03-03T00:00:00Z", "all_day": True,
        "attendees": [{"name": "Ada", "email": "ada@example.com"}],
        "rrule": "FREQ=WEEKLY;COUNT=3", "recurrence_id": "20260302", "etag": '"abc"'})
    assert event.all_day and event.attendees[0].email == "ada@example.com"
    assert event.rrule == "FREQ=WEEKLY;COUNT=3"


@pytest.mark.parametrize("field", ["subject", "message_id"])
def test_no_header_field_holds_a_line_break(field: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        load(Message, {field: "<a@b>\r\nBcc: victim@example.com"})
    assert caught.value.field == field


@pytest.mark.parametrize("email", ["ada", "ada@", "a b@example.com", "ada@example.com\n",
                                   "<ada@example.com>", "a@b@c"])
def test_a_contact_needs_an_email_address(email: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        load(Contact, {"name": "Ada", "email": email})
    assert caught.value.field == "email"


def test_a_message_reads_from_as_from_and_writes_it_back() -> None:
    message = load(Message, {"message_id": "x1@example.com", "from": {"email": "a@b.org"},
                             "date": "2026-01-02T03:04:05+00:00"})
    assert message.message_id == "<x1@example.com>"
    assert message.from_ == Contact(email="a@b.org")
    dumped = message.model_dump(mode="json", by_alias=True)
    assert dumped["from"] == {"name": "", "email": "a@b.org"}
    assert load(Message, dumped) == message


def test_the_thread_of_a_message() -> None:
    first = Message(message_id="<1@x>")
    assert first.thread == ("<1@x>",)
    assert Message(message_id="<3@x>", references=("<1@x>", "<2@x>")).thread == (
        "<1@x>", "<2@x>", "<3@x>")
    # No References, only In-Reply-To: RFC 5322 says to start from it.
    assert Message(message_id="<2@x>", in_reply_to="<1@x>").thread == ("<1@x>", "<2@x>")


def test_a_commit_and_its_trailers() -> None:
    text = ("Add the invoice step\n\nWhy it matters.\n\nSoloist-Intent: run-1/step-2\n"
            "Co-authored-by: Ada <ada@example.com>\nCo-authored-by: Grace <g@example.com>\n")
    commit = load(Commit, {"sha": SHA.upper(), "author": "Ada", "email": "ada@example.com",
                           "date": datetime(2026, 1, 1, tzinfo=UTC), "message": text,
                           "trailers": trailers_of(text)})
    assert commit.sha == SHA
    assert commit.trailer("soloist-intent") == "run-1/step-2"
    assert commit.trailers["Co-authored-by"] == ("Ada <ada@example.com>",
                                                 "Grace <g@example.com>")
    assert commit.trailer("Signed-off-by") is None
    with pytest.raises(InvalidPayload) as caught:
        load(Commit, {**commit.model_dump(), "sha": "abc"})
    assert caught.value.field == "sha"


@pytest.mark.parametrize("text", [
    "Soloist-Intent: k1",  # the subject line is never a trailer
    "Subject\n\nSoloist-Intent: k1\nnot a trailer line",
    "Subject\n\nbody",
])
def test_what_is_not_a_trailer_block(text: str) -> None:
    assert trailers_of(text) == {}


def test_a_folded_trailer_value_is_joined() -> None:
    assert trailers_of("S\n\nNote: one\n  two") == {"Note": ("one two",)}
