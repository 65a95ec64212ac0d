"""``/api/v1/memory``: search, facts (get, history, why, put with a reason, revert) and
documents (a version, the one current at a date, every version)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from soloist.errors import NotFound
from soloist.interfaces.api import schemas
from soloist.interfaces.api.deps import Admin, Reader, workspace

router = APIRouter(prefix="/api/v1/memory", tags=["memory"])

Namespace = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/search", response_model=list[schemas.Hit])
def search(request: Request, principal: Reader,
           q: Annotated[str, Query(min_length=1, max_length=1000)],
           namespace: Annotated[str, Query(max_length=200)] = "*",
           k: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict[str, Any]]:
    """The best documents and facts for ``q`` (keywords and meaning, fused)."""
    return [hit.as_dict() for hit in workspace(request).search_memory(q, namespace, k)]


@router.get("/facts", response_model=list[schemas.Fact])
def facts(request: Request, principal: Reader,
          namespace: Annotated[str, Query(max_length=200)] = "*") -> list[schemas.Fact]:
    """The current facts of the namespaces a glob matches."""
    return [schemas.Fact.model_validate(f) for f in workspace(request).facts(namespace)]


@router.get("/fact", response_model=schemas.Fact)
def get_fact(request: Request, principal: Reader, namespace: Namespace,
             subject: Annotated[str, Query(min_length=1)],
             key: Annotated[str, Query(min_length=1)],
             as_of: float | None = None) -> schemas.Fact:
    """A fact's current version (or the one current at ``as_of``)."""
    row = workspace(request).get_fact(namespace, subject, key, as_of=as_of)
    if row is None:
        raise NotFound(f"no fact {namespace}/{subject}/{key}")
    return schemas.Fact.model_validate(row)


@router.get("/fact/history", response_model=list[schemas.Fact])
def fact_history(request: Request, principal: Reader, namespace: Namespace,
                 subject: Annotated[str, Query(min_length=1)],
                 key: Annotated[str, Query(min_length=1)]) -> list[schemas.Fact]:
    """Every version, with who wrote it, in which run and step, and why."""
    return [schemas.Fact.model_validate(f)
            for f in workspace(request).fact_history(namespace, subject, key)]


@router.get("/fact/why", response_model=list[schemas.Why])
def why(request: Request, principal: Reader, namespace: Namespace,
        subject: Annotated[str, Query(min_length=1)],
        key: Annotated[str, Query(min_length=1)]) -> list[schemas.Why]:
    """Why we believe it: each version with the events that caused it."""
    return [schemas.Why(version=schemas.Fact.model_validate(e.version),
                        events=[schemas.Event.model_validate(x) for x in e.events])
            for e in workspace(request).why(namespace, subject, key)]


@router.put("/fact", response_model=schemas.Fact)
def put_fact(request: Request, principal: Admin, namespace: Namespace,
             subject: Annotated[str, Query(min_length=1)],
             key: Annotated[str, Query(min_length=1)], body: schemas.PutFact) -> schemas.Fact:
    """Write a new version, by the token's person, with a reason."""
    written = workspace(request).put_fact(namespace, subject, key, body.value, body.reason,
                                          actor=principal.actor)
    return schemas.Fact.model_validate(written.row)


@router.post("/fact/revert", response_model=schemas.Fact)
def revert_fact(request: Request, principal: Admin, namespace: Namespace,
                subject: Annotated[str, Query(min_length=1)],
                key: Annotated[str, Query(min_length=1)],
                body: schemas.RevertFact) -> schemas.Fact:
    """Write a new version with an older version's value."""
    return schemas.Fact.model_validate(workspace(request).revert_fact(
        namespace, subject, key, body.version, body.reason, actor=principal.actor))


@router.get("/document", response_model=schemas.Document)
def document(request: Request, principal: Reader, namespace: Namespace,
             key: Annotated[str, Query(min_length=1)],
             version: Annotated[int | None, Query(ge=1)] = None,
             as_of: float | None = None) -> schemas.Document:
    """A document's newest version, a given ``version``, or the one current at ``as_of``."""
    return schemas.Document.model_validate(
        workspace(request).document(namespace, key, version=version, as_of=as_of))


@router.get("/document/history", response_model=list[schemas.Document])
def document_history(request: Request, principal: Reader, namespace: Namespace,
                     key: Annotated[str, Query(min_length=1)]) -> list[schemas.Document]:
    return [schemas.Document.model_validate(d)
            for d in workspace(request).document_history(namespace, key)]
