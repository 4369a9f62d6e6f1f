"""Bounds on wire fields that the metadata database would otherwise refuse with a 500 (found by
tests/fuzz): NUL characters in stored text (PostgreSQL), strings over their column, integers
over a BIGINT."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from client.protocol.client_namenode import RenewLeaseRequest, SetAttributesRequest
from client.protocol.common import MAX_INT64
from client.protocol.datanode_namenode import RegisterRequest
from client.protocol.security import CreateTokenRequest

REGISTER = {"datanode_id": "dn-1", "url": "http://127.0.0.1:9864", "capacity": 1, "used": 0, "remaining": 1}


def _register(**fields: Any) -> dict[str, Any]:
    return {**REGISTER, "version": "0.1.0", **fields}


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (RenewLeaseRequest, {"client_name": "DFSClient_\x00"}),
        (SetAttributesRequest, {"path": "/a", "owner": "ali\x00ce"}),
        (SetAttributesRequest, {"path": "/a", "group": "\x00"}),
        (CreateTokenRequest, {"user": "bob\x00"}),
        (CreateTokenRequest, {"description": "ci \x00 token"}),
        (RegisterRequest, _register(version="0.1\x00")),
        (RegisterRequest, _register(version="v" * 65)),
        (RegisterRequest, _register(url="http://host\x00:1")),
        (RegisterRequest, _register(rack="/r\x00")),
        (RegisterRequest, _register(cluster_id="C" * 65)),
        (SetAttributesRequest, {"path": "/a", "mtime": MAX_INT64 + 1}),
        (SetAttributesRequest, {"path": "/a", "atime": MAX_INT64 + 1}),
    ],
)
def test_values_no_metadata_store_can_keep_are_refused(model: type[BaseModel], fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(fields)


def test_the_bounds_leave_ordinary_values_alone() -> None:
    assert RenewLeaseRequest(client_name="DFSClient_ü 1").client_name == "DFSClient_ü 1"
    assert SetAttributesRequest(path="/a", owner="alice", mtime=MAX_INT64).mtime == MAX_INT64
    assert RegisterRequest.model_validate(_register(version="v" * 64, rack="/rack-1")).version == "v" * 64
    assert CreateTokenRequest(description="nightly job").description == "nightly job"
