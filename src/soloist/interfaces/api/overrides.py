"""``/api/v1/overrides``: the edits a person made to drafts at gates, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Reader, workspace

router = APIRouter(prefix="/api/v1/overrides", tags=["overrides"])


class Source(schemas.Model):
    """An agent step whose draft the edit corrects."""

    step: str
    agent: str


class Override(schemas.Model):
    id: int  # the sequence number of its ``approval.override`` event
    at: float
    actor: str
    approval: str | None
    run: str | None
    playbook: str | None
    step: str | None  # the gated step where the person made the edit
    sources: list[Source]
    tool: str | None
    before: Any
    after: Any
    reason: str | None


@router.get("", response_model=list[Override])
def list_overrides(
        request: Request, principal: Reader,
        agent: Annotated[str | None, Query(max_length=200,
                                           description="drafts by this agent")] = None,
        playbook: Annotated[str | None, Query(max_length=200)] = None,
        step: Annotated[str | None, Query(max_length=200, description="the gated step, "
                                          "or the step that wrote the draft")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Response:
    """A person's edits of drafts at gates, newest first: before, after, the reason, and
    the agent steps whose drafts each corrects (what their later drafts see)."""
    return schemas.respond(workspace(request).overrides(agent=agent, playbook=playbook,
                                                        step=step, limit=limit))
