"""Fuzz the NameNode's and a DataNode's HTTP APIs from their own OpenAPI documents (schemathesis).

Every operation in the live `/openapi.json` gets generated requests, valid and invalid, against a
private cluster: the fuzzer may enter safe mode, decommission, delete `/` or register made-up
DataNodes, so never the shared one. Each answer must be no server error (500; another 5xx only
where the operation declares it, e.g. 503 in safe mode), a declared status, the declared content
type and headers, and a body that matches the declared schema (errors: `ErrorBody`).

The fuzzer holds the credentials a real peer would, so it reaches past authentication: requests to
`/v1/datanode/...` are signed with the cluster secret, and DataNode block requests that carry no
block token of their own get a valid one (those that carry a made-up one are refused, 403).

Budget: `DFS_FUZZ_EXAMPLES` generated requests per operation (default 10) on top of the coverage
phase's boundary cases (about a minute in all); with `HYPOTHESIS_PROFILE=ci` the examples are the
same on every run, without it each run explores new ones. A longer campaign:
``DFS_FUZZ_EXAMPLES=1000 .venv/bin/pytest tests/fuzz --timeout 0`` (past the 300 s test timeout).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case, CheckFunction
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.schemas import BaseSchema

from client.protocol.client_namenode import AdminRoutes, AdminState, SafeModeState
from client.protocol.common import HEADER_READ, HEADER_WRITE, MAX_INT64
from client.protocol.security import (
    BLOCK_TOKEN_PARAM,
    HEADER_BLOCK_TOKEN,
    HEADER_CLUSTER_AUTH,
    cluster_request_key,
    sign_request,
)
from tests.conftest import backend_database, postgres_admin_url
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("DFS_FUZZ_EXAMPLES", "10"))
load_all_checks()
#: Every registered check is a plain function (the registry's type also admits check classes).
FUZZ_CHECKS: list[CheckFunction] = CHECKS.get_by_names(  # type: ignore[assignment]
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
#: 5xx answers that name a condition, not a fault; each still has to be declared by its operation.
#: The NameNode: safe mode, no DataNodes, the metadata store unavailable. A DataNode also reports
#: its pipeline (502 to an unreachable downstream, 504 to a stalled one) and full volumes (507).
NAMENODE_5XX = ["503"]
DATANODE_5XX = ["502", "503", "504", "507"]
#: Where any address the fuzzer makes up is sent instead: the discard port, where nothing listens,
#: so a made-up DataNode URL (register, a write's downstream) never leads traffic off this host.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _nodeid_compat(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 reads `Function._nodeid`, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    """A NameNode and two DataNodes of the fuzzer's own, with a little data to find.

    On PostgreSQL where there is one (as in CI): it refuses what SQLite lets pass (NUL characters,
    over-long strings, out-of-range numbers), so a missing bound shows there first."""
    backend = "postgresql" if postgres_admin_url() else "sqlite"
    with backend_database(backend, None) as db_url:
        mini = MiniCluster(tmp_path_factory.mktemp("fuzz"), datanodes=2, db_url=db_url)
        try:
            mini.start()
            with mini.client() as fs:
                fs.mkdirs("/fuzz/dir")
                fs.write_bytes("/fuzz/file", b"x" * 100_000)
            yield mini
        finally:
            mini.stop()


def fuzz_config(allowed_5xx: list[str]) -> schemathesis.Config:
    config = schemathesis.Config()
    project = config.projects.default
    project.generation.update(max_examples=EXAMPLES)
    project.checks.not_a_server_error.expected_statuses = ["2xx", "3xx", "4xx", *allowed_5xx]
    # Calls with methods no route has are answered by the router alike for every path (405, an
    # ErrorBody): a few hundred requests that would only test FastAPI.
    project.phases.coverage.unexpected_methods = set()
    return config


@pytest.fixture(scope="module")
def namenode_schema(fuzz_cluster: MiniCluster) -> BaseSchema:
    return schemathesis.openapi.from_url(fuzz_cluster.url + "/openapi.json", config=fuzz_config(NAMENODE_5XX))


@pytest.fixture(scope="module")
def datanode_schema(fuzz_cluster: MiniCluster) -> BaseSchema:
    url = fuzz_cluster.datanodes[0].url
    assert url is not None
    return schemathesis.openapi.from_url(url + "/openapi.json", config=fuzz_config(DATANODE_5XX))


namenode_api = schemathesis.pytest.from_fixture("namenode_schema")
datanode_api = schemathesis.pytest.from_fixture("datanode_schema")


class ClusterSecretSigner(requests.auth.AuthBase):
    """Signs a request as a DataNode does (after `requests` has built its body)."""

    def __init__(self, secret: str) -> None:
        self.key = cluster_request_key(secret)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        content = body.encode() if isinstance(body, str) else body
        request.headers[HEADER_CLUSTER_AUTH] = sign_request(
            self.key, request.method or "GET", request.path_url, content
        )
        return request


def _nowhere(value: Any) -> Any:
    """`value` with every string under a "url" key pointed at NOWHERE."""
    if isinstance(value, dict):
        return {
            key: NOWHERE if key == "url" and isinstance(item, str) else _nowhere(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_nowhere(item) for item in value]
    return value


def keep_on_loopback(case: Case[Any]) -> None:
    """No made-up address leaves this host: JSON bodies and the X-DFS-Write header name NOWHERE instead.

    The header is left as JSON text (the schema says `content: application/json`, which the
    transport does not serialise for headers)."""
    if isinstance(case.body, dict | list):
        case.body = _nowhere(case.body)
    if HEADER_WRITE in case.headers:
        transfer = case.headers[HEADER_WRITE]
        if isinstance(transfer, str):
            try:
                transfer = json.loads(transfer)
            except ValueError:
                return  # not JSON at all: nothing to redirect
        case.headers[HEADER_WRITE] = json.dumps(_nowhere(transfer))


def heal_admin_state(cluster: MiniCluster) -> None:
    """Undo what an admin call may have done, so the operations after it reach past safe mode."""
    report = cluster.report()
    if report.safe_mode is SafeModeState.MANUAL:
        cluster.admin("POST", AdminRoutes.SAFEMODE, {"action": "leave"})
    for info in report.datanodes:
        if info.admin_state is not AdminState.NORMAL:
            cluster.admin("POST", AdminRoutes.RECOMMISSION, {"datanode": info.id})


def _block_id(case: Case[Any]) -> int | None:
    block_id = (case.path_parameters or {}).get("block_id")
    valid = isinstance(block_id, int) and not isinstance(block_id, bool) and 0 < block_id <= MAX_INT64
    return block_id if valid else None


def reach_past_credentials(case: Case[Any], cluster: MiniCluster) -> None:
    """A valid all-modes token for the URL's block, unless the case brought a token of its own; and
    a write header naming the URL's block (else every write stops at the mismatch check)."""
    block_id = _block_id(case)
    if block_id is None:
        return
    transfer = case.headers.get(HEADER_WRITE)
    if isinstance(transfer, dict) and isinstance(transfer.get("block_id"), int):
        transfer["block_id"] = block_id
    if HEADER_BLOCK_TOKEN not in case.headers and BLOCK_TOKEN_PARAM not in (case.query or {}):
        case.headers[HEADER_BLOCK_TOKEN] = cluster.block_token(block_id)


@namenode_api.parametrize()
def test_namenode_api(case: Case[Any], fuzz_cluster: MiniCluster) -> None:
    keep_on_loopback(case)
    signer = ClusterSecretSigner(fuzz_cluster.secret()) if case.path.startswith("/v1/datanode/") else None
    status = None
    try:
        status = case.call_and_validate(checks=FUZZ_CHECKS, auth=signer, timeout=30).status_code
    finally:
        if case.path.startswith("/v1/admin/") and case.method.upper() != "GET" and status in (None, 200):
            heal_admin_state(fuzz_cluster)


@datanode_api.parametrize()
def test_datanode_api(case: Case[Any], fuzz_cluster: MiniCluster) -> None:
    reach_past_credentials(case, fuzz_cluster)
    keep_on_loopback(case)
    case.call_and_validate(checks=FUZZ_CHECKS, timeout=30)


# --- the documents themselves ---------------------------------------------------------------------

HTML_PAGES = {"/", "/datanodes", "/health", "/browse", "/browse/{raw_path}", "/events"}


def _live_schema(url: str) -> dict[str, Any]:
    response = requests.get(url + "/openapi.json", timeout=30)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def _error_answers(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            for status, answer in operation["responses"].items():
                if not status.startswith(("2", "3")):
                    yield path, method, status, answer


@pytest.mark.parametrize("server", ["namenode", "datanode"])
def test_every_error_answer_is_an_error_body(fuzz_cluster: MiniCluster, server: str) -> None:
    url = fuzz_cluster.url if server == "namenode" else fuzz_cluster.datanodes[0].url
    assert url is not None
    document = _live_schema(url)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, status, answer in _error_answers(document):
        assert status != "422" or path.startswith("/v1/blocks/"), f"{method} {path}: FastAPI's 422"
        expected = "Readiness" if path == "/readyz" else "ErrorBody"
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{expected}"}, f"{method} {path} {status}"
    assert not HTML_PAGES & set(document["paths"]), "HTML pages belong outside the API document"
    assert not [path for path in document["paths"] if path.startswith("/webhdfs")]


def test_namenode_document_declares_what_its_middlewares_answer(fuzz_cluster: MiniCluster) -> None:
    paths = _live_schema(fuzz_cluster.url)["paths"]
    assert "429" in paths["/v1/namespace/status"]["get"]["responses"]
    assert "413" in paths["/v1/namespace/mkdirs"]["post"]["responses"]
    assert "429" not in paths["/v1/datanode/heartbeat"]["post"]["responses"]  # never rate limited
    assert "400" in paths["/v1/namespace/status"]["get"]["responses"]
    assert "400" not in paths["/healthz"]["get"]["responses"]


def test_block_routes_are_described_as_the_bytes_they_move(fuzz_cluster: MiniCluster) -> None:
    url = fuzz_cluster.datanodes[0].url
    assert url is not None
    block = _live_schema(url)["paths"]["/v1/blocks/{block_id}"]
    binary = {"type": "string", "format": "binary"}
    assert block["post"]["requestBody"]["content"] == {"application/octet-stream": {"schema": binary}}
    assert block["get"]["responses"]["200"]["content"] == {"application/octet-stream": {"schema": binary}}
    assert HEADER_READ in block["get"]["responses"]["200"]["headers"]
    (write_header,) = [p for p in block["post"]["parameters"] if p["name"] == HEADER_WRITE]
    assert write_header["required"] is True
    assert write_header["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WriteBlockHeader"}
