"""server_common.openapi: what the OpenAPI documents promise about errors, on a small app."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from client.protocol.errors import ErrorBody
from server_common.errors import install_error_handlers
from server_common.openapi import (
    OCTET_STREAM,
    binary_request_body,
    binary_response,
    error_description,
    error_responses,
    install_openapi,
)

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


class Item(BaseModel):
    name: str


def small_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_openapi(app, every_operation=[429], with_body=[413], exempt_prefixes=["/healthz"])
    router = APIRouter(responses=error_responses(404))

    @router.get("/items")
    async def list_items(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> list[Item]:
        return [Item(name="a")][:limit]

    @router.post("/items", responses=error_responses(409, 503))
    async def add_item(item: Item) -> Item:
        return item

    @router.post("/raw", openapi_extra=binary_request_body("bytes"), responses={200: binary_response("bytes")})
    async def raw() -> None:
        return None

    app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return small_app().openapi()


def test_validation_errors_are_documented_as_the_400_error_body_they_are(schema: dict[str, Any]) -> None:
    for operation in (schema["paths"]["/items"]["get"], schema["paths"]["/items"]["post"]):
        assert "422" not in operation["responses"]
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == ERROR_REF
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "ValidationError" not in schema["components"]["schemas"]


def test_a_validation_failure_is_answered_as_documented() -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=small_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/items", params={"limit": 99})

    response = asyncio.run(call())
    assert response.status_code == 400
    assert ErrorBody.model_validate(response.json()).code == "INVALID_ARGUMENT"


def test_an_operation_without_input_cannot_fail_validation(schema: dict[str, Any]) -> None:
    assert set(schema["paths"]["/healthz"]["get"]["responses"]) == {"200"}


def test_router_and_route_errors_are_error_bodies(schema: dict[str, Any]) -> None:
    add = schema["paths"]["/items"]["post"]["responses"]
    assert set(add) == {"200", "400", "404", "409", "413", "429", "503"}
    for status in ("404", "409", "503"):
        assert add[status]["content"]["application/json"]["schema"] == ERROR_REF
    assert "Retry-After" in add["503"]["headers"]
    assert "Retry-After" in add["429"]["headers"]
    assert "headers" not in add["409"]


def test_middleware_statuses_follow_their_scope(schema: dict[str, Any]) -> None:
    """429 everywhere but the exempt prefixes; 413 only where a body is taken."""
    assert "429" in schema["paths"]["/items"]["get"]["responses"]
    assert "413" not in schema["paths"]["/items"]["get"]["responses"]
    assert "413" in schema["paths"]["/raw"]["post"]["responses"]
    assert "429" not in schema["paths"]["/healthz"]["get"]["responses"]


def test_binary_routes_are_octet_streams(schema: dict[str, Any]) -> None:
    raw = schema["paths"]["/raw"]["post"]
    assert raw["requestBody"]["content"][OCTET_STREAM]["schema"] == {"type": "string", "format": "binary"}
    assert raw["responses"]["200"]["content"][OCTET_STREAM]["schema"]["format"] == "binary"


def test_descriptions_come_from_the_error_table() -> None:
    assert "FILE_EXISTS" in error_description(409)
    assert "LEASE_CONFLICT" in error_description(409)
    assert "FILE_EXISTS" not in error_description(404)
    assert error_description(418) == "Error body"


def test_the_document_is_built_once() -> None:
    app = small_app()
    assert app.openapi() is app.openapi()
