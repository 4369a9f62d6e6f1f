"""HTTP binding of the NameNode's administration API (safe mode, decommissioning, fsck, balancer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from client.protocol.client_namenode import (
    AdminRoutes,
    AdminState,
    BalancerRequest,
    BalancerStatus,
    DatanodeInfo,
    DatanodeSelector,
    FsckReport,
    FsckRequestFlags,
    SafeModeRequest,
    SafeModeStatus,
)
from client.protocol.paths import MAX_PATH_BYTES, PATH_JSON_SCHEMA
from namenode.api.deps import NameNodeDep, UserDep
from server_common.openapi import error_responses

#: Admin operations are the superuser's (403); a DataNode or path may be unknown (404).
router = APIRouter(tags=["admin"], responses=error_responses(401, 403, 404, 409, 503))


@router.get(AdminRoutes.SAFEMODE)
async def safemode_status(namenode: NameNodeDep) -> SafeModeStatus:
    return await namenode.safemode_status()


@router.post(AdminRoutes.SAFEMODE)
async def safemode_action(request: SafeModeRequest, namenode: NameNodeDep, user: UserDep) -> SafeModeStatus:
    return await namenode.safemode_action(request.action, user=user)


@router.post(AdminRoutes.DECOMMISSION)
async def decommission(request: DatanodeSelector, namenode: NameNodeDep, user: UserDep) -> DatanodeInfo:
    return await namenode.set_admin_state(request.datanode, AdminState.DECOMMISSIONING, user=user)


@router.post(AdminRoutes.RECOMMISSION)
async def recommission(request: DatanodeSelector, namenode: NameNodeDep, user: UserDep) -> DatanodeInfo:
    return await namenode.set_admin_state(request.datanode, AdminState.NORMAL, user=user)


@router.get(AdminRoutes.FSCK)
async def fsck(
    namenode: NameNodeDep,
    user: UserDep,
    path: Annotated[str, Query(min_length=1, max_length=MAX_PATH_BYTES * 4, json_schema_extra=PATH_JSON_SCHEMA)] = "/",
    files: bool = False,
    blocks: bool = False,
    locations: bool = False,
) -> FsckReport:
    return await namenode.fsck(path, FsckRequestFlags(files=files, blocks=blocks, locations=locations), user=user)


@router.get(AdminRoutes.BALANCER)
async def balancer_status(namenode: NameNodeDep) -> BalancerStatus:
    return await namenode.balancer_status()


@router.post(AdminRoutes.BALANCER)
async def balancer_start(request: BalancerRequest, namenode: NameNodeDep, user: UserDep) -> BalancerStatus:
    return await namenode.balancer_start(request, user=user)


@router.delete(AdminRoutes.BALANCER)
async def balancer_stop(namenode: NameNodeDep, user: UserDep) -> BalancerStatus:
    return await namenode.balancer_stop(user=user)
