"""``/memory``: search; the current facts; a fact with its full history (who, which run
and step, why, since when) and why we believe it; a document's versions and the diff of
two of them."""

from __future__ import annotations

import difflib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from soloist.errors import NotFound
from soloist.interfaces.web.pages import PageRoute, render, viewer, workspace

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Query(max_length=1000)]
Name = Annotated[str, Query(min_length=1, max_length=200)]
FACTS_SHOWN = 200


@router.get("/memory", response_class=HTMLResponse)
def memory(request: Request, q: Text = "", namespace: Text = "*") -> HTMLResponse:
    viewer(request)
    ws = workspace(request)
    hits = ws.search_memory(q, namespace or "*", 20) if q.strip() else []
    facts = ws.facts(namespace or "*")
    return render(request, "memory.html", q=q, namespace=namespace, hits=hits,
                  facts=facts[:FACTS_SHOWN], more_facts=max(0, len(facts) - FACTS_SHOWN))


@router.get("/memory/fact", response_class=HTMLResponse)
def fact(request: Request, namespace: Name, subject: Name, key: Name) -> HTMLResponse:
    viewer(request)
    ws = workspace(request)
    history = ws.fact_history(namespace, subject, key)
    if not history:
        raise NotFound(f"no fact {namespace}/{subject}/{key}")
    return render(request, "fact.html", namespace=namespace, subject=subject, key=key,
                  history=history, why=ws.why(namespace, subject, key))


@router.get("/memory/document", response_class=HTMLResponse)
def document(request: Request, namespace: Name, key: Name,
             old: Annotated[int | None, Query(ge=1, alias="from")] = None,
             new: Annotated[int | None, Query(ge=1, alias="to")] = None) -> HTMLResponse:
    viewer(request)
    versions = workspace(request).document_history(namespace, key)
    if not versions:
        raise NotFound(f"no document {namespace}/{key}")
    by_version = {d.version: d for d in versions}
    newest = max(by_version)
    new = new or newest
    old = old or max(1, new - 1)
    for wanted in (old, new):
        if wanted not in by_version:
            raise NotFound(f"document {namespace}/{key} has no version {wanted}")
    diff = list(difflib.unified_diff(by_version[old].text.splitlines(),
                                     by_version[new].text.splitlines(),
                                     f"v{old}", f"v{new}", lineterm=""))
    return render(request, "document.html", namespace=namespace, key=key,
                  versions=versions, old=old, new=new, diff=diff,
                  current=by_version[new])
