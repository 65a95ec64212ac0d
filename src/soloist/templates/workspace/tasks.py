"""Python steps and tools of this workspace. A step gets a StepContext first."""

from __future__ import annotations

from typing import Any

from soloist import StepContext, ToolCall, tool


def draft_invoice(ctx: StepContext, customer: str, hours: float, rate: float) -> dict[str, Any]:
    """Reads only: compute the invoice. Nothing leaves the workspace here."""
    lines = [{"what": f"consulting for {customer}", "hours": hours, "rate": rate}]
    return {"customer": customer, "lines": lines, "total": round(hours * rate, 2)}


def send_invoice(ctx: StepContext, invoice: dict[str, Any]) -> dict[str, Any]:
    """Stages the side effect; it is dispatched after the gate, once, with its key."""
    intent = ctx.stage("ledger.record",
                       {"customer": invoice["customer"], "amount": invoice["total"]},
                       f"record invoice of {invoice['total']} for {invoice['customer']}")
    return {"key": intent.idempotency_key, "amount": invoice["total"]}


@tool("ledger.record", effect="write", idempotent=True)
def ledger_record(customer: str, amount: float, call: ToolCall) -> dict[str, Any]:
    """Append an entry to ledger.tsv (once per idempotency key)."""
    from soloist.execution.tools.builtins import file_append

    return file_append("ledger.tsv", f"{customer}\t{amount:.2f}", call)


@tool("ledger.void", effect="write", idempotent=True)
def ledger_void(customer: str, amount: float, call: ToolCall) -> dict[str, Any]:
    """Compensation: record a voiding entry for an invoice."""
    from soloist.execution.tools.builtins import file_append

    return file_append("ledger.tsv", f"{customer}\t{-amount:.2f}\tvoid", call)
