"""HTTP binding of the DataNode -> NameNode protocol (models in client.protocol.datanode_namenode)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from client.protocol.client_namenode import Ack, Routes
from client.protocol.datanode_namenode import (
    BlockReportRequest,
    HeartbeatRequest,
    HeartbeatResponse,
    IncrementalReportRequest,
    RegisterRequest,
    RegisterResponse,
)
from namenode.api.deps import NameNodeDep, require_cluster_secret
from server_common.openapi import error_responses

#: No cluster secret (401), an unregistered DataNode (404), another cluster (409).
router = APIRouter(
    tags=["datanode"], dependencies=[Depends(require_cluster_secret)], responses=error_responses(401, 404, 409)
)


@router.post(Routes.REGISTER)
async def register(request: RegisterRequest, namenode: NameNodeDep) -> RegisterResponse:
    return await namenode.register(request)


@router.post(Routes.HEARTBEAT)
async def heartbeat(request: HeartbeatRequest, namenode: NameNodeDep) -> HeartbeatResponse:
    return await namenode.heartbeat(request)


@router.post(Routes.BLOCK_REPORT)
async def block_report(request: BlockReportRequest, namenode: NameNodeDep) -> Ack:
    await namenode.block_report(request)
    return Ack()


@router.post(Routes.INCREMENTAL_REPORT)
async def incremental_report(request: IncrementalReportRequest, namenode: NameNodeDep) -> Ack:
    await namenode.incremental_report(request)
    return Ack()
