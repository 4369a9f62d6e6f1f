"""Honest OpenAPI documents: every error a route answers is declared, and declared as an `ErrorBody`.

FastAPI documents a 422 `HTTPValidationError` on every route with parameters, but our handler
(server_common.errors) answers a request that fails validation with 400 INVALID_ARGUMENT. So
`install_openapi` swaps that 422 for a 400 `ErrorBody`, and routers declare the other statuses
they answer with `error_responses(...)`. The schemas are what the fuzz tests (tests/fuzz) hold
the live servers to: an undeclared status or a body off its schema fails CI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from client.protocol.errors import ERROR_CLASSES, ErrorBody

#: Statuses whose answer carries a Retry-After header (seconds) when the condition is expected to pass.
RETRY_AFTER_STATUSES = frozenset({429, 503})

OCTET_STREAM = "application/octet-stream"
#: An OpenAPI schema of raw bytes (packets, block data).
BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}

_REF_PREFIX = "#/components/schemas/"
_VALIDATION_ERROR_REF = _REF_PREFIX + "HTTPValidationError"
_ERROR_BODY_REF = _REF_PREFIX + "ErrorBody"
_RETRY_AFTER_HEADER = {
    "description": "Seconds after which the request may succeed.",
    "schema": {"type": "integer", "minimum": 1},
}


def error_description(status: int) -> str:
    """'Error body; codes: FILE_EXISTS, LEASE_CONFLICT, ...' from the one error table."""
    codes = sorted(cls.code.value for cls in ERROR_CLASSES.values() if cls.http_status == status)
    if status == 429:
        codes = codes or ["rate limited"]
    return "Error body; codes: " + ", ".join(codes) if codes else "Error body"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or a route: each status answered with an `ErrorBody`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"model": ErrorBody, "description": error_description(status)}
        if status in RETRY_AFTER_STATUSES:
            response["headers"] = {"Retry-After": _RETRY_AFTER_HEADER}
        responses[status] = response
    return responses


def binary_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 200 whose body is raw bytes (`application/octet-stream`), for `responses=`."""
    response: dict[str, Any] = {"description": description, "content": {OCTET_STREAM: {"schema": BINARY_SCHEMA}}}
    if headers:
        response["headers"] = headers
    return response


def binary_request_body(description: str) -> dict[str, Any]:
    """`openapi_extra=` for a route that streams its request body as raw bytes."""
    return {
        "requestBody": {
            "description": description,
            "required": True,
            "content": {OCTET_STREAM: {"schema": BINARY_SCHEMA}},
        }
    }


def _error_ref(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": error_description(status),
        "content": {"application/json": {"schema": {"$ref": _ERROR_BODY_REF}}},
    }
    if status in RETRY_AFTER_STATUSES:
        response["headers"] = {"Retry-After": _RETRY_AFTER_HEADER}
    return response


def _declare_errors(
    schema: dict[str, Any], every_operation: Iterable[int], with_body: Iterable[int], exempt_prefixes: tuple[str, ...]
) -> None:
    """Replace FastAPI's 422 HTTPValidationError with the 400 ErrorBody our handler really sends on
    every operation that takes parameters or a body (any of them may fail validation), and add the
    statuses a middleware answers before any route runs."""
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
            if default_422 == {"$ref": _VALIDATION_ERROR_REF}:
                del responses["422"]
            statuses = [] if path.startswith(exempt_prefixes) else list(every_operation)
            if operation.get("requestBody"):
                statuses.extend(with_body)
            if operation.get("parameters") or operation.get("requestBody"):
                statuses.append(400)
            for status in statuses:
                responses.setdefault(str(status), _error_ref(status))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    if "ErrorBody" not in components:
        body = ErrorBody.model_json_schema(ref_template=_REF_PREFIX + "{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body


def _declare_json_headers(schema: dict[str, Any], json_headers: Mapping[str, type[BaseModel]]) -> None:
    """A header that carries a model as JSON is documented as such (`content`, not a bare string)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                model = json_headers.get(parameter["name"]) if parameter.get("in") == "header" else None
                if model is None:
                    continue
                parameter.pop("schema", None)
                parameter["content"] = {"application/json": {"schema": {"$ref": _REF_PREFIX + model.__name__}}}
                definition = model.model_json_schema(ref_template=_REF_PREFIX + "{model}")
                for name, nested in definition.pop("$defs", {}).items():
                    components.setdefault(name, nested)
                components.setdefault(model.__name__, definition)


def install_openapi(
    app: FastAPI,
    *,
    every_operation: Iterable[int] = (),
    with_body: Iterable[int] = (),
    exempt_prefixes: Iterable[str] = (),
    json_headers: Mapping[str, type[BaseModel]] | None = None,
) -> None:
    """Serve `/openapi.json` with validation failures documented as they are answered (400).

    `every_operation`: statuses a middleware may answer on any route outside `exempt_prefixes`
    (429 from the rate limit); `with_body`: on any route that takes a body (413 from the body limit);
    `json_headers`: header name -> the model its value is the JSON of.
    """
    generate = app.openapi
    exempt = tuple(exempt_prefixes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _declare_errors(schema, tuple(every_operation), tuple(with_body), exempt)
            _declare_json_headers(schema, json_headers or {})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
