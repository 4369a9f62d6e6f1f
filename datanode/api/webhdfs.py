"""WebHDFS on a DataNode: the second step of CREATE, APPEND, OPEN and GETFILECHECKSUM.

The NameNode redirects these here (Hadoop's two-step flow); the bytes move between the
client and this DataNode, which streams them through the SDK into replicated blocks (or
out of them), exactly as Hadoop's DatanodeWebHdfsMethods does with a DFSClient.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from client.protocol.webhdfs import PREFIX, UNSUPPORTED
from datanode.api.blocks import DataNodeDep
from server_common.webhdfs import Caller, Params, WebHdfsError, request_path, run

router = APIRouter(tags=["webhdfs"])

METHODS = ["GET", "PUT", "POST", "DELETE"]


@router.api_route(PREFIX, methods=METHODS, include_in_schema=False)
@router.api_route(PREFIX + "/{raw_path:path}", methods=METHODS, include_in_schema=False)
async def webhdfs(request: Request, datanode: DataNodeDep, raw_path: str = "") -> Response:
    params = Params(request)
    op_name = (params.get("op") or "").upper()

    async def handle() -> Response:
        op = params.op(request.method)
        path = request_path(raw_path)
        # The NameNode already settled who the caller acts as; it put that user in the Location.
        # In token mode it also put the caller's token there (`delegation`), which we act with.
        user = Caller(params.user(), params.get("delegation") or "")
        ops = datanode.webhdfs
        if op == "CREATE":
            return await ops.create(request, path, params, user)
        if op == "APPEND":
            return await ops.append(request, path, params, user)
        if op == "OPEN":
            return await ops.open(path, params, user)
        if op == "GETFILECHECKSUM":
            return await ops.checksum(path, user)
        raise WebHdfsError(UNSUPPORTED, f"{op} is not supported on a DataNode; send it to the NameNode")

    return await run(op_name, handle)
