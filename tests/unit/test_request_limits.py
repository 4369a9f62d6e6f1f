"""Request body limits (server_common.body_limit) and the sizes they are chosen for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from pydantic import BaseModel

from client.protocol.common import MAX_INT64, ExtendedBlock
from client.protocol.datanode_namenode import (
    MAX_REPORT_BODY_BYTES,
    MAX_REPORT_PAGE,
    BlockReportRequest,
    IncrementalReportRequest,
    ReportedReplica,
)
from client.protocol.errors import ErrorBody, ErrorCode
from server_common.body_limit import BodyLimitMiddleware
from server_common.errors import install_error_handlers

LIMIT = 1000


class Echo(BaseModel):
    text: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/json")
    async def json_route(body: Echo) -> dict[str, int]:
        return {"length": len(body.text)}

    @app.post("/raw")
    async def raw_route(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.post("/free/raw")
    async def free_route(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT, limits=[("/free/", None)])
    return app


def post(path: str, **kwargs: object) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://nn") as http:
            return await http.post(path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(call())


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    body = ErrorBody.model_validate(response.json())
    assert body.code is ErrorCode.REQUEST_TOO_LARGE
    assert str(LIMIT) in body.message


def test_a_body_within_the_limit_is_served() -> None:
    assert post("/json", json={"text": "a" * 500}).json() == {"length": 500}
    assert post("/raw", content=chunks(LIMIT)).json() == {"length": LIMIT}


def test_a_declared_length_over_the_limit_is_refused_up_front() -> None:
    assert_too_large(post("/json", json={"text": "a" * 2000}))


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives() -> None:
    """No Content-Length: the middleware counts, and the route's own parse error never leaves."""
    assert_too_large(post("/raw", content=chunks(LIMIT + 1)))
    assert_too_large(post("/json", content=chunks(50 * LIMIT), headers={"content-type": "application/json"}))


def test_exempt_prefixes_take_any_size() -> None:
    assert post("/free/raw", content=chunks(20 * LIMIT)).json() == {"length": 20 * LIMIT}


def test_the_largest_report_page_fits_the_datanode_route_limit() -> None:
    """MAX_REPORT_BODY_BYTES must take a full page with every number at its widest."""
    widest = ReportedReplica(block_id=MAX_INT64, gen_stamp=MAX_INT64, length=MAX_INT64)
    incremental = IncrementalReportRequest(
        datanode_id="D" * 64,
        received=[widest] * MAX_REPORT_PAGE,
        deleted=[ExtendedBlock(block_id=MAX_INT64, gen_stamp=MAX_INT64)] * MAX_REPORT_PAGE,
    )
    full = BlockReportRequest(
        datanode_id="D" * 64, report_id="r" * 64, page=MAX_INT64, last=False, replicas=[widest] * MAX_REPORT_PAGE
    )
    for report in (incremental, full):
        assert len(report.model_dump_json()) < MAX_REPORT_BODY_BYTES / 2  # and room to spare
