"""Request ids on the servers: take `X-Request-ID` (or make one), log under it, pass it on, echo it.

A pure ASGI middleware, not Starlette's BaseHTTPMiddleware: that one runs the app in
another task and buffers streamed bodies through a memory channel, which the data path
(big streamed block bodies) and context-variable propagation both suffer from. Here the
app runs in the request's own task, so everything it awaits, and every task it creates,
sees the id: structlog lines (`request_id=` via merge_contextvars), stdlib lines of SDK
code (`RequestIdLogFilter`), and the SDK's own requests made on the request's behalf (a
pipeline forwarded downstream, a replica reported to the NameNode, WebHDFS proxying).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import structlog
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client.protocol.common import HEADER_REQUEST_ID, is_valid_request_id
from client.request_id import current_request_id, new_request_id, request_id

_HEADER_KEY = HEADER_REQUEST_ID.lower().encode("latin-1")


def incoming_request_id(scope: Scope) -> str:
    """The caller's id if it is well formed, else a fresh one (junk is never logged or echoed)."""
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            text = value.decode("latin-1")
            return text if is_valid_request_id(text) else new_request_id()
    return new_request_id()


@contextlib.contextmanager
def bound_request_id(value: str) -> Iterator[str]:
    """Log under `value` and make the SDK send it, for the duration of the block."""
    with request_id(value), structlog.contextvars.bound_contextvars(request_id=value):
        yield value


class RequestIdMiddleware:
    """Binds each HTTP request's id for the app and sets `X-Request-ID` on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = incoming_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER_REQUEST_ID] = value
            await send(message)

        with bound_request_id(value):
            await self.app(scope, receive, send_with_id)


def install_request_ids(app: Starlette) -> None:
    """Wrap the whole middleware stack of `app` in RequestIdMiddleware.

    Outermost, not via `add_middleware`: Starlette always puts its 500 handler outside user
    middleware, and the "unhandled error" line it logs and the 500 it sends must carry the id too.
    """
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestIdMiddleware(build())  # type: ignore[method-assign]


class RequestIdLogFilter(logging.Filter):
    """Gives stdlib log records a `request_suffix` (`" request_id=..."` or empty) for the format."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = current_request_id()
        record.request_suffix = f" request_id={value}" if value else ""
        return True
