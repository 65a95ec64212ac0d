"""``/approvals``: the inbox. Each item shows its intents as they will happen, the step's
output and why it is gated; approve, reject with a reason, retry with guidance, or
approve several at once. The list refreshes while it is open, so a decision made
elsewhere (the CLI, the API, another tab) shows here."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soloist.errors import InputError, SoloistError
from soloist.interfaces.web import intents
from soloist.interfaces.web.pages import (
    FormFields,
    PageRoute,
    digest,
    field,
    render,
    unchanged,
    viewer,
    workspace,
)
from soloist.workspace.core import PendingApproval

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _inbox(request: Request) -> dict[str, Any]:
    waiting = sorted(workspace(request).approvals(), key=lambda p: p.approval.created_at)
    return {"waiting": waiting, "now": time.time(),
            "shown": {p.approval.id: _shown(p) for p in waiting},
            "seen": digest([p.approval.id for p in waiting])}


def _shown(item: PendingApproval) -> list[intents.Shown]:
    return [intents.show(i.tool, i.args) for i in item.intents]


def _back(message: str = "") -> Response:
    return RedirectResponse("/approvals" + (f"?done={message}" if message else ""),
                            status_code=303)


@router.get("/approvals", response_class=HTMLResponse)
def inbox(request: Request) -> HTMLResponse:
    viewer(request)
    return render(request, "approvals.html", **_inbox(request))


@router.get("/approvals/items", response_class=HTMLResponse)
def items(request: Request) -> Response:
    """The list alone, for the page's refresh: nothing if the same items wait."""
    viewer(request)
    inbox = _inbox(request)
    if request.query_params.get("seen") == inbox["seen"]:
        return unchanged()
    return render(request, "_inbox.html", **inbox)


@router.post("/approvals/batch")
def approve_many(request: Request, form: FormFields) -> Response:
    principal = viewer(request, "approve")
    ids = [i for i in form.getlist("ids") if isinstance(i, str) and i]
    if not ids:
        raise InputError("select at least one approval to approve")
    refused = []
    for approval_id in dict.fromkeys(ids):
        try:
            workspace(request).approve(approval_id, field(form, "note") or None,
                                       principal.actor)
        except SoloistError as error:
            refused.append(f"{approval_id}: {error.message}")
    if refused:
        return render(request, "error.html", 409, title="Some were not approved",
                      message="; ".join(refused))
    return _back("approved")


@router.post("/approvals/{approval_id}/approve")
def approve(request: Request, form: FormFields, approval_id: str) -> Response:
    principal = viewer(request, "approve")
    workspace(request).approve(approval_id, field(form, "note") or None, principal.actor)
    return _back("approved")


@router.post("/approvals/{approval_id}/edit")
def edit_then_approve(request: Request, form: FormFields, approval_id: str) -> Response:
    """Approve with the person's changes: an intent's arguments as JSON (``args-N``) and,
    for an email, its subject and text over them (``subject-N``; ``text-N`` or
    ``body-N``). Each edit is
    checked against its tool and kept beside the original in the log."""
    from soloist import jsonvalues

    principal = viewer(request, "approve")
    edits: dict[int, dict[str, Any]] = {}
    for name in form:
        kind, _, number = name.partition("-")
        if kind != "args" or not number.isdigit():
            continue
        idx = int(number)
        try:
            args = jsonvalues.loads(field(form, name))
        except ValueError as error:
            raise InputError(f"the arguments of intent {idx} are not JSON: {error}",
                             field=f"edits.{idx}") from None
        if not isinstance(args, dict):
            raise InputError(f"the arguments of intent {idx} must be a JSON object",
                             field=f"edits.{idx}")
        for key in ("subject", "text", "body"):
            if f"{key}-{idx}" in form:
                args[key] = field(form, f"{key}-{idx}")
        edits[idx] = args
    if not edits:
        raise InputError("there is nothing edited to approve")
    note = field(form, "note") or None
    workspace(request).approve(approval_id, note, principal.actor, edits=edits)
    return _back("approved")


@router.post("/approvals/{approval_id}/reject")
def reject(request: Request, form: FormFields, approval_id: str) -> Response:
    principal = viewer(request, "approve")
    reason = field(form, "reason")
    if not reason:
        raise InputError("say why you reject it: the reason is recorded with the decision")
    workspace(request).reject(approval_id, reason, principal.actor)
    return _back("rejected")


@router.post("/approvals/{approval_id}/retry")
def retry(request: Request, form: FormFields, approval_id: str) -> Response:
    principal = viewer(request, "approve")
    guidance = field(form, "guidance")
    if not guidance:
        raise InputError("give the step some guidance for its next attempt")
    workspace(request).retry(approval_id, guidance, principal.actor)
    return _back("retried")
