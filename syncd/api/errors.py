"""JSON errors: every failure answers `{"error": {"code", "message"}}` (and `pointer`, the
JSON pointer into the body, when one value of it was refused) with its status
(the `Error` model, which `/openapi.json` declares for every error status)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route

from syncd import metrics
from syncd.api.models.common import Error, ErrorDetail

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by handlers; rendered as the JSON error shape."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, pointer: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        #: JSON pointer (RFC 6901) of the offending value of the request body, if known
        self.pointer = pointer


def error_response(
    status: int, message: str, code: str | None = None, *, pointer: str | None = None
) -> JSONResponse:
    detail = ErrorDetail(code=code or _CODES.get(status, "error"), message=message, pointer=pointer)
    return JSONResponse(Error(error=detail).model_dump(exclude_none=True), status_code=status)


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.code, pointer=exc.pointer)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method of the path: each method is a route of its own, and Starlette's 405
    names only the methods of the first route whose path matched."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods.update(route.methods or ())
    return sorted(methods)


async def handle_storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
    response = error_response(503, "storage unavailable, try again later")
    response.headers["retry-after"] = "1"
    return response


async def handle_storage_rejected(request: Request, exc: Exception) -> JSONResponse:
    # input checks should have refused the value: worth a line and a count, not a 500
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
    metrics.ERRORS.labels("api_input").inc()
    return error_response(422, "a value of the request was refused by the database")


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error")
