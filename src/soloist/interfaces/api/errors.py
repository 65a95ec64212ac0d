"""One shape for every error the API answers, ``{"error": {"kind", "message", "field"?}}``,
and the status that says what it is: a person's mistake is never a 500.

``kind`` is the error's class in snake case (``not_found``, ``invalid_state``,
``input_error``, ``unauthenticated``, ``permission_denied``, ``request_invalid`` for a
request FastAPI could not read, ``internal`` for a bug); ``field`` names the input at fault
where one is.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soloist.errors import (
    IllegalTransition,
    InvalidPayload,
    InvalidState,
    NotFound,
    PermissionDenied,
    SoloistError,
    StoreUnavailable,
    TooManyAttempts,
    Unauthenticated,
    UniqueViolation,
    UserError,
)

_log = logging.getLogger(__name__)

#: first match wins: subclasses before their parents
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (TooManyAttempts, 429),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidState, 409),
    (IllegalTransition, 409),
    (UniqueViolation, 409),
    (StoreUnavailable, 503),
    (UserError, 422),
    (InvalidPayload, 422),
)


def status_of(error: BaseException) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def kind_of(error: BaseException) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def body(kind: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": kind, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def response(error: SoloistError) -> JSONResponse:
    status = status_of(error)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status in (429, 503):
        headers["Retry-After"] = str(max(1, round(error.retry_after or 1)))
    if status == 500:
        _log.error("internal error: %s", error, exc_info=error)
        return JSONResponse(body("internal", "internal error; the server's log says more"),
                            500)
    return JSONResponse(body(kind_of(error), error.message, getattr(error, "field", None)),
                        status, headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(SoloistError)
    async def soloist_error(request: Request, error: SoloistError) -> JSONResponse:
        return response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = _location(first.get("loc", ()))
        message = str(first.get("msg", "the request is invalid"))
        text = f"{where}: {message}" if where else message
        return JSONResponse(body("request_invalid", text, where), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
                 403: "permission_denied"}
        return JSONResponse(body(kinds.get(error.status_code, "http_error"),
                                 str(error.detail)), error.status_code,
                            dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        _log.error("internal error on %s %s", request.method, request.url.path,
                   exc_info=error)
        return JSONResponse(body("internal", "internal error; the server's log says more"),
                            500)
