"""WebHDFS plumbing shared by the NameNode and the DataNodes: query parameters as Hadoop reads
them, RemoteException responses, and the data operations (CREATE, APPEND, OPEN,
GETFILECHECKSUM) that a DataNode, or the NameNode in proxy mode, serves through the SDK.

Hadoop lower-cases parameter names and upper-cases the op; the first of repeated parameters
wins; unknown parameters are ignored (clients send extra ones). Booleans are case-insensitive.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from client.file_writer import DfsOutputStream
from client.filesystem import AsyncDFSClient
from client.protocol import paths
from client.protocol.common import MAX_INT64
from client.protocol.errors import DfsError, DfsIsADirectoryError, describe_validation_errors
from client.protocol.webhdfs import (
    ANONYMOUS_USER,
    AUTHORIZATION,
    FILE_EXISTS,
    FILE_NOT_FOUND,
    ILLEGAL_ARGUMENT,
    OP_ENUM_BY_METHOD,
    OPS_BY_METHOD,
    PREFIX,
    JavaException,
    java_exception,
    remote_exception,
)

log = structlog.get_logger(__name__)

JSON_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
#: Bytes per piece when streaming OPEN responses (the reader hands out what DataNodes send).
OPEN_PIECE = 1024 * 1024


class WebHdfsError(Exception):
    """An error to answer as Hadoop would: a RemoteException with this Java name and status."""

    def __init__(self, exception: JavaException, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message


def error_response(exception: JavaException, message: str) -> JSONResponse:
    return JSONResponse(status_code=exception.status, content=remote_exception(exception, message))


def render_error(exc: BaseException, op: str = "") -> JSONResponse:
    """Any failure of a WebHDFS request as the RemoteException a Hadoop client expects."""
    if isinstance(exc, WebHdfsError):
        return error_response(exc.exception, exc.message)
    if isinstance(exc, DfsIsADirectoryError) and op == "CREATE":
        return error_response(FILE_EXISTS, f"{exc.path or ''} already exists as a directory")
    if isinstance(exc, DfsIsADirectoryError):
        return error_response(FILE_NOT_FOUND, f"Path is not a file: {exc.path or exc.message}")
    if isinstance(exc, ValidationError):  # a parameter our request models refuse (range, name rules)
        return error_response(ILLEGAL_ARGUMENT, f"Invalid value: {describe_validation_errors(exc.errors())}")
    if isinstance(exc, DfsError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))} if exc.retry_after_s else None
        response = error_response(java_exception(exc), str(exc))
        if headers:
            response.headers.update(headers)
        return response
    log.exception("webhdfs request failed", op=op, error=repr(exc))
    return error_response(
        JavaException("RuntimeException", "java.lang.RuntimeException", 500), f"{type(exc).__name__}: {exc}"
    )


def json_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, media_type=JSON_TYPE)


def invalid_param(name: str, value: str, why: str) -> WebHdfsError:
    return WebHdfsError(ILLEGAL_ARGUMENT, f'Invalid value for webhdfs parameter "{name}": {why} ({value!r})')


class Params:
    """The query parameters of one WebHDFS request, read the way Hadoop's ParamFilter does."""

    def __init__(self, request: Request) -> None:
        self.values: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            self.values.setdefault(key.lower(), value)  # the first of repeated parameters wins

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value is None or value == "" else value

    def op(self, method: str) -> str:
        raw = self.get("op")
        if raw is None:
            raise WebHdfsError(ILLEGAL_ARGUMENT, 'Invalid value for webhdfs parameter "op": op is missing')
        op = raw.upper()
        if op not in OPS_BY_METHOD.get(method, frozenset()):
            raise WebHdfsError(
                ILLEGAL_ARGUMENT,
                f'Invalid value for webhdfs parameter "op": No enum constant {OP_ENUM_BY_METHOD[method]}.{op}',
            )
        return op

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise invalid_param(name, value, "expected true or false")
        return lowered == "true"

    def integer(
        self, name: str, default: int | None, *, minimum: int | None = None, maximum: int = MAX_INT64
    ) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise invalid_param(name, value, "not an integer") from None
        if minimum is not None and number < minimum:
            raise invalid_param(name, value, f"must be at least {minimum}")
        if number > maximum:  # beyond this no offset, length or size is meaningful (nor fits the database)
            raise invalid_param(name, value[:40], f"must be at most {maximum}")
        return number

    def permission(self, default: int | None) -> int | None:
        value = self.get("permission")
        if value is None:
            return default
        if not re.fullmatch(r"[0-7]{1,4}", value):
            raise invalid_param("permission", value, "expected an octal mode such as 755 or 1777")
        return int(value, 8)

    def user(self, superuser: str | None = None) -> str:
        """The effective user: `user.name` ("simple" auth), or `doas` when the caller may proxy.

        Only the superuser may act as someone else (Hadoop's proxy-user check)."""
        user = self.get("user.name", ANONYMOUS_USER) or ANONYMOUS_USER
        doas = self.get("doas")
        if doas is None or doas == user:
            return user
        if superuser is None or user != superuser:
            raise WebHdfsError(
                AUTHORIZATION,
                f"User: {user} is not allowed to impersonate {doas}",
            )
        return doas


def request_path(raw: str) -> str:
    """The namespace path of a WebHDFS URL: `/webhdfs/v1` alone is the root; a trailing slash
    and repeated slashes are ignored, as Hadoop's Path does."""
    cleaned = "/" + "/".join(part for part in raw.split("/") if part)
    return paths.validate_path(cleaned)


def webhdfs_url(base_url: str, path: str, params: dict[str, str]) -> str:
    """`base_url` + the WebHDFS path of `path` + query (for redirect Locations)."""
    from urllib.parse import quote, urlencode

    return f"{base_url.rstrip('/')}{PREFIX}{quote(path)}?{urlencode(params)}"


async def run(op: str, handler: Callable[[], Awaitable[Response]]) -> Response:
    """Run one WebHDFS operation, answering any failure as a RemoteException."""
    try:
        return await handler()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return render_error(exc, op)


class Caller(NamedTuple):
    """Who a data operation acts as: the user, and the token that proves it (token mode)."""

    user: str
    token: str = ""


@dataclass
class _UserClient:
    fs: AsyncDFSClient
    caller: Caller
    requests: int = 0  # requests using it right now
    last_used: float = 0.0


class DataOps:
    """CREATE, APPEND, OPEN and GETFILECHECKSUM served through the SDK against a NameNode.

    A DataNode runs one of these (the NameNode redirects data requests to it); so does a
    NameNode in proxy mode. One SDK client per user, so files are owned by whoever sent them;
    beyond `max_idle_clients`, the least recently used idle ones are closed."""

    def __init__(self, namenode_url: str, max_idle_clients: int = 32, *, ca_file: Path | None = None) -> None:
        self.namenode_url = namenode_url
        self.ca_file = ca_file
        self.max_idle_clients = max_idle_clients
        self._clients: dict[Caller, _UserClient] = {}

    @contextlib.asynccontextmanager
    async def client(self, user: Caller) -> AsyncIterator[AsyncDFSClient]:
        """The user's SDK client, held for the duration of the block."""
        entry = self._acquire(user)
        try:
            yield entry.fs
        finally:
            await self._release(entry)

    def _acquire(self, user: Caller) -> _UserClient:
        entry = self._clients.get(user)
        if entry is None:
            # token="" explicitly: never a $DFS_TOKEN from this server's environment.
            # umask 0: WebHDFS's `permission` (default 644) is the mode, as Hadoop uses it.
            fs = AsyncDFSClient(self.namenode_url, user=user.user, token=user.token, ca_file=self.ca_file, umask=0)
            entry = self._clients[user] = _UserClient(fs, caller=user)
        entry.requests += 1
        return entry

    async def _release(self, entry: _UserClient) -> None:
        entry.requests -= 1
        entry.last_used = time.monotonic()
        idle = [e for e in self._clients.values() if e.requests == 0 and e.fs.open_writers == 0]
        idle.sort(key=lambda e: e.last_used)
        for stale in idle[: max(0, len(idle) - self.max_idle_clients)]:
            self._clients.pop(stale.caller, None)
            with contextlib.suppress(Exception):
                await stale.fs.aclose()

    @property
    def users(self) -> list[str]:
        """Users with an SDK client open here (for tests and status pages)."""
        return [caller.user for caller in self._clients]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for entry in clients:
            with contextlib.suppress(Exception):
                await entry.fs.aclose()

    async def create(self, request: Request, path: str, params: Params, user: Caller) -> Response:
        replication = params.integer("replication", None, minimum=1)
        block_size = params.integer("blocksize", None, minimum=1)
        async with self.client(user) as fs:
            stream = await fs.create(
                path,
                overwrite=params.boolean("overwrite", False),
                replication=replication,
                block_size=block_size,
                mode=params.permission(0o644) or 0,
            )
            await _pour(request, stream)
        # Hadoop answers 201 Created with the file's URI and no body.
        scheme = "swebhdfs" if request.url.scheme == "https" else "webhdfs"
        return Response(status_code=201, headers={"Location": f"{scheme}://{request.url.netloc}{path}"})

    async def append(self, request: Request, path: str, params: Params, user: Caller) -> Response:
        async with self.client(user) as fs:
            stream = await fs.append(path)
            await _pour(request, stream)
        return Response(status_code=200)

    async def open(self, path: str, params: Params, user: Caller) -> Response:
        offset = params.integer("offset", 0, minimum=0) or 0
        length = params.integer("length", None, minimum=0)
        entry = self._acquire(user)  # released when the body is sent (or on an error here)
        try:
            stream = await entry.fs.open(path, offset)
        except BaseException:
            await self._release(entry)
            raise
        if offset > stream.length:
            await stream.close()
            await self._release(entry)
            raise WebHdfsError(ILLEGAL_ARGUMENT, f"Offset={offset} out of the range [0, {stream.length}] of {path}")
        end = stream.length if length is None else min(stream.length, offset + length)
        stream.seek(offset)
        stream.bound(end)  # a ranged OPEN fetches only its range from the block's DataNode

        async def body() -> AsyncIterator[bytes | memoryview]:
            remaining = end - offset
            try:
                while remaining > 0:
                    piece = await stream.read_some(min(remaining, OPEN_PIECE))
                    if not piece:
                        break
                    remaining -= len(piece)
                    yield piece
            finally:
                await stream.close()
                await self._release(entry)

        return StreamingResponse(body(), media_type=OCTET_STREAM, headers={"Content-Length": str(end - offset)})

    async def checksum(self, path: str, user: Caller) -> Response:
        async with self.client(user) as fs:
            checksum = await fs.file_checksum(path)
        return json_response(
            {"FileChecksum": {"algorithm": checksum.algorithm, "bytes": checksum.bytes, "length": checksum.length}}
        )


async def _pour(request: Request, stream: DfsOutputStream) -> None:
    """Stream a request body (chunked or not) into an SDK output stream and close it durably."""
    try:
        async for piece in request.stream():
            if piece:
                await stream.write(piece)
    except BaseException:
        await stream.abort()
        raise
    await stream.close()
