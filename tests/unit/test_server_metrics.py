"""server_common.metrics in-process: route-template labels, one registry per app, the /metrics answer."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from namenode.metrics import statement_kind
from server_common.metrics import UNMATCHED_ROUTE, install_metrics


def make_app(prefix: str) -> FastAPI:
    app = FastAPI()
    install_metrics(app, prefix)

    @app.get("/v1/blocks/{block_id}")
    async def block(block_id: int) -> dict[str, int]:
        return {"block_id": block_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async def page(_request: object) -> PlainTextResponse:
        return PlainTextResponse("page")

    app.router.routes.append(Mount("/web", routes=[Route("/nodes/{node}", page)]))
    return app


def request_counts(text: str, prefix: str) -> dict[tuple[str, str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(text):
        if family.name == f"{prefix}_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = sample.labels
                    counts[(labels["route"], labels["method"], labels["status"])] = sample.value
    return counts


async def call(app: FastAPI, *paths: str) -> str:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in paths:
            await client.get(path)
        response = await client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=")
        return response.text


def test_requests_are_counted_by_route_template_and_status_class() -> None:
    app = make_app("dfs_test")
    text = asyncio.run(call(app, "/v1/blocks/1", "/v1/blocks/2", "/v1/blocks/x", "/nope/1", "/web/nodes/a", "/boom"))
    counts = request_counts(text, "dfs_test")
    assert counts[("/v1/blocks/{block_id}", "GET", "2xx")] == 2
    assert counts[("/v1/blocks/{block_id}", "GET", "4xx")] == 1  # not an integer: validation error
    assert counts[(UNMATCHED_ROUTE, "GET", "4xx")] == 1
    assert counts[("/web/nodes/{node}", "GET", "2xx")] == 1
    assert counts[("/boom", "GET", "5xx")] == 1
    assert not any("/v1/blocks/1" in route for route, _, _ in counts)


def test_each_app_has_its_own_registry() -> None:
    first, second = make_app("dfs_same"), make_app("dfs_same")  # would collide in a global registry
    asyncio.run(call(first, "/v1/blocks/1"))
    text = asyncio.run(call(second))
    assert ("/v1/blocks/{block_id}", "GET", "2xx") not in request_counts(text, "dfs_same")


def test_statement_kinds() -> None:
    assert statement_kind("  SELECT 1") == "select"
    assert statement_kind("insert into x values (1)") == "insert"
    assert statement_kind("UPDATE x SET a = 1") == "update"
    assert statement_kind("DELETE FROM x") == "delete"
    assert statement_kind("SAVEPOINT sa_1") == "other"
    assert statement_kind("PRAGMA journal_mode=WAL") == "other"
