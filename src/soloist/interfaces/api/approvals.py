"""``/api/v1/approvals``: what waits for a person, with the exact intents, and the
decisions: approve, reject with a reason, retry with guidance, approve many."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from soloist.errors import SoloistError
from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Approver, Reader, workspace
from soloist.interfaces.api.errors import kind_of
from soloist.workspace.core import PendingApproval

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])


def pending(item: PendingApproval) -> dict[str, Any]:
    return {"approval": schemas.Approval.of(item.approval), "playbook": item.playbook,
            "intents": [schemas.Intent.of(i) for i in item.intents], "output": item.output,
            "dispatched": item.dispatched}


@router.get("", response_model=list[schemas.PendingApproval])
def list_approvals(request: Request, principal: Reader,
                   run_id: str | None = None) -> Response:
    """Open approvals, oldest first, each with its staged intents and the step's output."""
    return schemas.respond([pending(p) for p in workspace(request).approvals(run_id=run_id)])


@router.post("/batch/approve", response_model=schemas.BatchResult)
def approve_many(request: Request, principal: Approver,
                 body: schemas.BatchApproval) -> schemas.BatchResult:
    """Approve each of ``ids``; one that cannot be approved is said why, the others go."""
    ws = workspace(request)
    decided, refused = [], {}
    for approval_id in dict.fromkeys(body.ids):
        try:
            decided.append(schemas.Approval.model_validate(
                ws.approve(approval_id, body.note, principal.actor)))
        except SoloistError as error:
            refused[approval_id] = schemas.ErrorDetail(kind=kind_of(error),
                                                       message=error.message)
    return schemas.BatchResult(decided=decided, refused=refused)


@router.post("/{approval_id}/approve", response_model=schemas.Approval)
def approve(request: Request, principal: Approver, approval_id: str,
            body: schemas.Decision | None = None) -> schemas.Approval:
    """Let the step's intents go, after the ``edits`` if any (each checked against its
    tool's schema: 422 naming the intent)."""
    decision = body or schemas.Decision()
    edits = {e.idx: e.args for e in decision.edits}
    return schemas.Approval.model_validate(
        workspace(request).approve(approval_id, decision.note, principal.actor, edits=edits))


@router.post("/{approval_id}/reject", response_model=schemas.Approval)
def reject(request: Request, principal: Approver, approval_id: str,
           body: schemas.Rejection) -> schemas.Approval:
    return schemas.Approval.model_validate(
        workspace(request).reject(approval_id, body.reason, principal.actor))


@router.post("/{approval_id}/retry", response_model=schemas.Approval)
def retry(request: Request, principal: Approver, approval_id: str,
          body: schemas.Guidance) -> schemas.Approval:
    """Run the step again, with the person's guidance in what it sees."""
    return schemas.Approval.model_validate(
        workspace(request).retry(approval_id, body.guidance, principal.actor))
