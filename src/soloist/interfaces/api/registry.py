"""``/api/v1/definitions``: playbooks, agents and policies with their versions, a diff
between two, deploy from the workspace folder, roll back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from soloist.errors import NotFound
from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Admin, Reader, workspace

router = APIRouter(prefix="/api/v1/definitions", tags=["registry"])
Kind = Literal["playbook", "agent", "policies"]


@router.get("", response_model=list[schemas.Definition])
def list_definitions(request: Request, principal: Reader,
                     kind: Kind | None = None) -> list[schemas.Definition]:
    """The newest version of every definition (of one kind)."""
    return [schemas.Definition.model_validate(d) for d in workspace(request).definitions(kind)]


@router.post("/deploy", response_model=dict[str, Any])
def deploy(request: Request, principal: Admin) -> dict[str, Any]:
    """Read the workspace folder and record a new version of everything that changed (a
    bad file: 422 naming file, line and column, and nothing is deployed)."""
    report = workspace(request).deploy(principal.actor)
    return {"deployed": [{"kind": k, "name": n, "version": v} for k, n, v in report.deployed],
            "unchanged": [{"kind": k, "name": n, "version": v}
                          for k, n, v in report.unchanged]}


@router.get("/{kind}/{name}", response_model=list[schemas.Definition])
def versions(request: Request, principal: Reader, kind: Kind,
             name: str) -> list[schemas.Definition]:
    """Every version, oldest first, with who deployed it and when."""
    return [schemas.Definition.model_validate(d)
            for d in workspace(request).history(kind, name)]


@router.get("/{kind}/{name}/diff", response_model=schemas.Diff)
def diff(request: Request, principal: Reader, kind: Kind, name: str,
         old: Annotated[int, Query(ge=1, alias="from")],
         new: Annotated[int, Query(ge=1, alias="to")]) -> schemas.Diff:
    """A unified diff from version ``from`` to ``to`` (empty when they are the same)."""
    return schemas.Diff(old=old, new=new, diff=workspace(request).diff(kind, name, old, new))


@router.get("/{kind}/{name}/{version}", response_model=schemas.DefinitionBody)
def version(request: Request, principal: Reader, kind: Kind, name: str,
            version: int) -> schemas.DefinitionBody:
    """One version with its content."""
    for row in workspace(request).history(kind, name):
        if row.version == version:
            return schemas.DefinitionBody.model_validate(row)
    raise NotFound(f"{kind} {name!r} has no version {version}")


@router.post("/{kind}/{name}/rollback", response_model=dict[str, Any])
def rollback(request: Request, principal: Admin, kind: Kind, name: str,
             body: schemas.Rollback) -> dict[str, Any]:
    """Deploy an older version's content again, as a new version."""
    report = workspace(request).rollback(kind, name, body.version, principal.actor)
    return {"kind": report.kind, "name": report.name, "version": report.version,
            "to_version": report.to_version, "warning": report.warning,
            "deployed": report.deployed}
