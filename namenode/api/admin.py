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
from client.protocol.paths import MAX_PATH_BYTES
from namenode.api.deps import NameNodeDep

router = APIRouter(tags=["admin"])


@router.get(AdminRoutes.SAFEMODE)
async def safemode_status(namenode: NameNodeDep) -> SafeModeStatus:
    return await namenode.safemode_status()


@router.post(AdminRoutes.SAFEMODE)
async def safemode_action(request: SafeModeRequest, namenode: NameNodeDep) -> SafeModeStatus:
    return await namenode.safemode_action(request.action)


@router.post(AdminRoutes.DECOMMISSION)
async def decommission(request: DatanodeSelector, namenode: NameNodeDep) -> DatanodeInfo:
    return await namenode.set_admin_state(request.datanode, AdminState.DECOMMISSIONING)


@router.post(AdminRoutes.RECOMMISSION)
async def recommission(request: DatanodeSelector, namenode: NameNodeDep) -> DatanodeInfo:
    return await namenode.set_admin_state(request.datanode, AdminState.NORMAL)


@router.get(AdminRoutes.FSCK)
async def fsck(
    namenode: NameNodeDep,
    path: Annotated[str, Query(min_length=1, max_length=MAX_PATH_BYTES * 4)] = "/",
    files: bool = False,
    blocks: bool = False,
    locations: bool = False,
) -> FsckReport:
    return await namenode.fsck(path, FsckRequestFlags(files=files, blocks=blocks, locations=locations))


@router.get(AdminRoutes.BALANCER)
async def balancer_status(namenode: NameNodeDep) -> BalancerStatus:
    return await namenode.balancer_status()


@router.post(AdminRoutes.BALANCER)
async def balancer_start(request: BalancerRequest, namenode: NameNodeDep) -> BalancerStatus:
    return await namenode.balancer_start(request)


@router.delete(AdminRoutes.BALANCER)
async def balancer_stop(namenode: NameNodeDep) -> BalancerStatus:
    return await namenode.balancer_stop()
