"""``/api/v1/workers``: the live workers, and asking one to drain (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Admin, Reader, workspace

router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


class Worker(schemas.Model):
    id: str
    host: str | None
    pid: int | None
    version: str | None
    started_at: float | None
    heartbeat_at: float
    steps_in_hand: int  # steps it holds a lease on now
    draining: bool  # asked to claim nothing more and exit once its hands are empty


@router.get("", response_model=list[Worker])
def list_workers(request: Request, principal: Reader) -> Response:
    """The live worker processes, by id."""
    return schemas.respond([Worker.of(w) for w in workspace(request).workers()])


@router.post("/{worker_id}/drain", response_model=Worker)
def drain_worker(request: Request, principal: Admin,
                 worker_id: Annotated[str, Path(max_length=200)]) -> Worker:
    """Ask a worker (its id, or a prefix naming only one) to claim nothing more, finish
    the steps in its hands and exit; 404 if no live worker matches."""
    return Worker.model_validate(workspace(request).drain_worker(worker_id, principal.actor))
