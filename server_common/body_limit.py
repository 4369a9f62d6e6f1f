"""Request body limits: `413 REQUEST_TOO_LARGE` (our JSON ErrorBody) for a body over its route's limit.

A pure ASGI middleware: a declared `Content-Length` over the limit is refused before a byte
of the body is read, and a body without one (chunked) is counted as it arrives and refused
the moment it passes the limit, so no route ever buffers more than the limit. The app's own
answer to the cut-off body (a parse error) is dropped in favour of the 413.

Ours rather than the framework's `max_body_size`: that answers plain text (clients expect the
ErrorBody), and exists only in recent FastAPI releases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client.protocol.errors import RequestTooLargeError

__all__ = ["BodyLimitMiddleware"]


class _BodyTooLargeError(Exception):
    """Raised out of `receive` to stop the app reading; never leaves the middleware."""


class BodyLimitMiddleware:
    """Limits request bodies to `max_bytes`, or to the limit of the first matching prefix.

    `limits`: (path prefix, bytes) pairs for routes that need another limit (None: unlimited,
    e.g. WebHDFS data bodies, which are streamed to DataNodes and never buffered)."""

    def __init__(self, app: ASGIApp, max_bytes: int, limits: Iterable[tuple[str, int | None]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limits = tuple(limits)

    def limit_for(self, path: str) -> int | None:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(str(scope.get("path", ""))) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit, f"declares {declared} bytes")
            return
        received = 0
        overflowed = started = False

        async def counting_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflowed:
                return  # the app's answer to a cut-off body; the 413 goes out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLargeError:
            pass
        except Exception:
            if not overflowed:
                raise
        if overflowed and not started:
            await _refuse(send, limit, f"sent more than {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length before we see it
    return None


async def _refuse(send: Send, limit: int, detail: str) -> None:
    error = RequestTooLargeError(f"request body too large: the request {detail}; the limit is {limit} bytes")
    body = json.dumps(error.to_body().model_dump(mode="json", exclude_none=True) | {"path": None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
