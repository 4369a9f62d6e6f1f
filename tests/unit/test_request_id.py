"""Request ids: the header rule, the server middleware (in-process), and the SDK stamping every call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from client import AsyncDFSClient, DFSClient, request_id
from client.protocol.common import HEADER_REQUEST_ID, is_valid_request_id
from client.protocol.errors import DfsError
from client.request_id import current_request_id
from server_common.request_id import RequestIdLogFilter, incoming_request_id, install_request_ids

VALID = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=64)


@given(VALID)
def test_well_formed_ids_are_accepted(value: str) -> None:
    assert is_valid_request_id(value)
    assert incoming_request_id({"headers": [(b"x-request-id", value.encode())]}) == value


@pytest.mark.parametrize(
    "value", ["", "x" * 65, "a b", "abc\n", "id;rm -rf", "é", "a/b", "<script>", "x\x1b[31m", "ab\r\nInjected: 1"]
)
def test_malformed_ids_are_replaced(value: str) -> None:
    assert not is_valid_request_id(value)
    replaced = incoming_request_id({"headers": [(b"x-request-id", value.encode("utf-8", "replace"))]})
    assert replaced != value and is_valid_request_id(replaced) and len(replaced) == 16


def test_an_absent_header_gets_a_fresh_id() -> None:
    first, second = incoming_request_id({"headers": []}), incoming_request_id({"headers": []})
    assert is_valid_request_id(first) and first != second


def test_the_sdk_refuses_to_set_a_malformed_id() -> None:
    with pytest.raises(ValueError, match="invalid request id"), request_id("a b"):
        pass


# --- the middleware, in-process ------------------------------------------------------------


async def _seen(request: Request) -> JSONResponse:
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return JSONResponse({"structlog": bound, "sdk": current_request_id()})


async def _stream(_request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0)
            yield f"{current_request_id()}\n".encode()

    return StreamingResponse(body())


async def _boom(_request: Request) -> JSONResponse:
    raise RuntimeError("boom")


def _app() -> Starlette:
    app = Starlette(routes=[Route("/seen", _seen), Route("/stream", _stream), Route("/boom", _boom)])
    install_request_ids(app)
    return app


def _call(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get(path, headers=headers)

    return asyncio.run(run())


def test_middleware_binds_and_echoes_a_valid_id() -> None:
    response = _call("/seen", {HEADER_REQUEST_ID: "job-7.a_b"})
    assert response.headers[HEADER_REQUEST_ID] == "job-7.a_b"
    assert response.json() == {"structlog": "job-7.a_b", "sdk": "job-7.a_b"}
    assert "request_id" not in structlog.contextvars.get_contextvars()
    assert current_request_id() is None


def test_middleware_never_echoes_a_malformed_id() -> None:
    response = _call("/seen", {HEADER_REQUEST_ID: "bad id<>"})
    echoed = response.headers[HEADER_REQUEST_ID]
    assert echoed != "bad id<>" and is_valid_request_id(echoed)
    assert response.json() == {"structlog": echoed, "sdk": echoed}


def test_middleware_keeps_streams_streaming_under_the_id() -> None:
    response = _call("/stream", {HEADER_REQUEST_ID: "stream-1"})
    assert response.headers[HEADER_REQUEST_ID] == "stream-1"
    assert response.text == "stream-1\n" * 3


def test_an_unhandled_error_still_answers_with_the_id() -> None:
    response = _call("/boom", {HEADER_REQUEST_ID: "boom-1"})
    assert response.status_code == 500
    assert response.headers[HEADER_REQUEST_ID] == "boom-1"


def test_stdlib_lines_carry_the_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    log_filter = RequestIdLogFilter()
    log_filter.filter(record)
    assert record.request_suffix == ""  # type: ignore[attr-defined]
    with request_id("line-1"):
        log_filter.filter(record)
    assert record.request_suffix == " request_id=line-1"  # type: ignore[attr-defined]


# --- the SDK -------------------------------------------------------------------------------


class Recorder:
    """A NameNode that answers every call with NOT_FOUND and remembers the ids it was sent."""

    def __init__(self) -> None:
        self.ids: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.ids.append(request.headers.get(HEADER_REQUEST_ID))
        body = {"code": "FILE_NOT_FOUND", "errno": 2, "message": "no such file", "path": "/x"}
        return httpx.Response(404, json=body)


def test_async_sdk_calls_carry_the_callers_id_or_one_per_operation() -> None:
    recorder = Recorder()

    async def run() -> None:
        async with AsyncDFSClient("http://nn", transport=httpx.MockTransport(recorder)) as fs:
            with request_id("mine-1"):
                assert not await fs.exists("/x")
                with pytest.raises(DfsError):
                    await fs.delete("/x")
            assert not await fs.exists("/x")
            assert not await fs.exists("/x")

    asyncio.run(run())
    assert recorder.ids[:2] == ["mine-1", "mine-1"]
    generated = recorder.ids[2:]
    assert len(generated) == 2 and generated[0] != generated[1]
    assert all(value is not None and len(value) == 16 for value in generated)


def test_sync_sdk_carries_the_id_into_its_loop_thread() -> None:
    recorder = Recorder()
    with DFSClient("http://nn", transport=httpx.MockTransport(recorder)) as fs:
        with request_id("sync-1"):
            assert not fs.exists("/x")
            with pytest.raises(DfsError):
                fs.list("/x")
        assert not fs.exists("/x")
    assert recorder.ids[:2] == ["sync-1", "sync-1"]
    assert recorder.ids[2] not in (None, "sync-1")
