"""Errors as HTTP: every `BranchworkError` (and every request FastAPI refuses) becomes one JSON
problem response (RFC 9457: `type`, `title`, `status`, `detail`, `instance`), in this one place.

`detail` is the error's own message, which says what to do next. A bug (any other exception)
is a 500 whose detail says so, without the traceback (that goes to the server's log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import branchwork as bw

_log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

# Most specific first: the first class an error is an instance of decides.
STATUS: tuple[tuple[type[bw.BranchworkError], int, str], ...] = (
    (bw.Unauthenticated, 401, "unauthenticated"),
    (bw.Forbidden, 403, "forbidden"),
    (bw.RateLimited, 429, "rate-limited"),
    (bw.NotFound, 404, "not-found"),
    (bw.AlreadyExists, 409, "already-exists"),
    (bw.TurnInProgress, 409, "turn-in-progress"),
    (bw.Conflict, 409, "conflict"),
    (bw.PolicyRefused, 403, "policy-refused"),
    (bw.InvalidPath, 422, "invalid-path"),
    (bw.InvalidInput, 422, "invalid-input"),
    (bw.UserError, 400, "bad-request"),
    (bw.ProviderError, 502, "provider-error"),
    (bw.StoreError, 503, "store-error"),
    (bw.InfrastructureError, 500, "infrastructure-error"),
    (bw.ControlSignal, 409, "interrupted"),
)


def problem(status: int, slug: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def for_error(error: bw.BranchworkError, request: Request) -> JSONResponse:
    for kind, status, slug in STATUS:
        if isinstance(error, kind):
            response = problem(status, slug, error.message, request, error=type(error).__name__)
            if isinstance(error, bw.RateLimited):
                response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
            return response
    return problem(500, "error", error.message, request, error=type(error).__name__)


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    @app.exception_handler(bw.BranchworkError)
    async def _ours(request: Request, exc: bw.BranchworkError) -> JSONResponse:
        return for_error(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        detail = f"the request does not match the API ({where}); see /docs for its shape"
        return problem(422, "invalid-request", detail, request, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail) if exc.detail else "see /docs for the API"
        response = problem(exc.status_code, f"http-{exc.status_code}", detail, request)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error on %s %s", request.method, request.url.path)
        detail = "an unexpected error (a bug in Branchwork); the server's log has the details"
        return problem(500, "internal-error", detail, request)
