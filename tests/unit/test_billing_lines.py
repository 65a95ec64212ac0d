"""An invoice's lines read back in the order they were given, whatever order the billing
server lists items made in the same second."""

from __future__ import annotations

from soloist.integrations.billing.stripe_client import invoice_from


def line(description: str, amount: int, index: str | None = None) -> dict[str, object]:
    metadata = {"soloist_line": index} if index is not None else {}
    return {"description": description, "amount": amount, "quantity": 1,
            "metadata": metadata}


def test_lines_made_by_soloist_come_in_their_given_order_then_the_others() -> None:
    invoice = invoice_from({
        "id": "in_1", "customer": "cus_1", "currency": "eur", "status": "draft",
        "total": 4300, "metadata": {},
        "lines": {"data": [line("travel", 1234, "1"), line("Plan", 0),
                           line("consulting", 2000, "0"), line("extra", 1066, "10")]}})
    assert [li.description for li in invoice.lines] == ["consulting", "travel", "extra",
                                                        "Plan"]
