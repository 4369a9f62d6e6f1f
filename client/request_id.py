"""The request id of the operation in progress, sent as `X-Request-ID` on every SDK request.

One id names one top-level operation (a `put`, a `get`, a `mkdirs`...): every NameNode and
DataNode call that makes it up carries it, and every server logs it, so one operation can
be followed across all processes with `grep <id> logs/*.log`. The id lives in a context
variable: asyncio tasks copy it when they are created, and the servers set it for the
request they are handling, so calls they make on its behalf carry the caller's id.

    from client import DFSClient, request_id
    with DFSClient() as fs, request_id("nightly-import-42"):
        fs.put("local.bin", "/data/local.bin")
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import httpx

from client.protocol.common import HEADER_REQUEST_ID, is_valid_request_id

P = ParamSpec("P")
R = TypeVar("R")

_current: ContextVar[str | None] = ContextVar("dfs_request_id", default=None)


def new_request_id() -> str:
    """A fresh id: 16 hex digits (64 random bits, unique enough to grep for)."""
    return secrets.token_hex(8)


def current_request_id() -> str | None:
    """The id of the operation this code runs for, if one is set."""
    return _current.get()


@contextlib.contextmanager
def request_id(value: str | None = None) -> Iterator[str]:
    """Run the block under request id `value` (a fresh one when None); yields the id.

    Raises:
        ValueError: `value` is not 1-64 characters of ``[A-Za-z0-9._-]`` (servers would
            replace it, so the id would not be followable).
    """
    if value is None:
        value = new_request_id()
    elif not is_valid_request_id(value):
        raise ValueError(f"invalid request id {value!r}: use 1-64 characters of A-Z a-z 0-9 . _ -")
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


@contextlib.contextmanager
def ensure_request_id() -> Iterator[str]:
    """Keep the id already set (an outer operation's, or the caller's), else set a fresh one."""
    existing = _current.get()
    if existing is not None:
        yield existing
        return
    with request_id() as value:
        yield value


def operation(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorate a top-level SDK coroutine: all its requests share one id (see `ensure_request_id`)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with ensure_request_id():
            return await fn(*args, **kwargs)

    return wrapper


class _HasRequestId(Protocol):
    request_id: str


S = TypeVar("S", bound=_HasRequestId)


def stream_operation(
    fn: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Decorate a method of an open stream: its requests carry the id the stream was opened
    under (`self.request_id`), whoever calls it later and from wherever."""

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await with_request_id(self.request_id, fn(self, *args, **kwargs))

    return wrapper


async def with_request_id(value: str | None, coroutine: Awaitable[R]) -> R:
    """Await `coroutine` under request id `value` (unchanged when None): carries an id captured
    in one thread into a coroutine run on another thread's loop (the blocking client)."""
    if value is None:
        return await coroutine
    token = _current.set(value)
    try:
        return await coroutine
    finally:
        _current.reset(token)


async def stamp_request(request: httpx.Request) -> None:
    """httpx request hook: add `X-Request-ID` from the context unless the caller set one."""
    value = _current.get()
    if value is not None and HEADER_REQUEST_ID not in request.headers:
        request.headers[HEADER_REQUEST_ID] = value


__all__ = [
    "current_request_id",
    "ensure_request_id",
    "new_request_id",
    "operation",
    "request_id",
    "stamp_request",
    "stream_operation",
    "with_request_id",
]
