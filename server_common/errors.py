"""One exception handler set per app: every failure leaves as the protocol's JSON error body."""

from __future__ import annotations

import math

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from client.protocol.errors import (
    DfsError,
    InternalError,
    InvalidArgumentError,
    NotSupportedError,
    ProtocolError,
    describe_validation_errors,
)

log = structlog.get_logger(__name__)


def error_response(error: DfsError) -> JSONResponse:
    headers = {"Retry-After": str(math.ceil(error.retry_after_s))} if error.retry_after_s else None
    content = error.to_body().model_dump(mode="json", exclude_none=True)
    content.setdefault("path", None)  # always present: {code, errno, message, path} is the fixed shape
    return JSONResponse(status_code=error.http_status, content=content, headers=headers)


def describe_validation_error(exc: RequestValidationError) -> str:
    """'query.offset: Input should be a valid integer; ...' — short and naming each field."""
    return "invalid request: " + describe_validation_errors(exc.errors())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DfsError)
    async def _dfs_error(_request: Request, exc: DfsError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidArgumentError(describe_validation_error(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error: DfsError
        if exc.status_code in (404, 405):
            error = NotSupportedError(f"no such operation: {request.method} {request.url.path}")
        elif exc.status_code < 500:
            error = ProtocolError(str(exc.detail))
        else:
            error = InternalError(str(exc.detail))
        # Keep the router's status (404/405 say what happened at the HTTP level); the body is ours.
        return JSONResponse(status_code=exc.status_code, content=error.to_body().model_dump(mode="json"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", method=request.method, path=request.url.path)
        return error_response(InternalError(f"internal error: {type(exc).__name__}"))
