"""HTTP binding of the client <-> NameNode protocol (models in client.protocol.client_namenode)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from client.protocol.client_namenode import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    AbandonBlockRequest,
    Ack,
    AddBlockRequest,
    AppendRequest,
    AppendResponse,
    ClusterInfo,
    ClusterReport,
    CompleteRequest,
    CompleteResponse,
    ConcatRequest,
    ContentSummary,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DirectoryListing,
    FileStatus,
    LocatedBlock,
    LocatedBlocks,
    MkdirsRequest,
    RecoverLeaseRequest,
    RecoverPipelineRequest,
    RenameRequest,
    RenewLeaseRequest,
    ReportBadBlocksRequest,
    Routes,
    SetAttributesRequest,
    SetReplicationRequest,
    TruncateRequest,
    TruncateResponse,
)
from client.protocol.common import MAX_INT64
from client.protocol.paths import MAX_PATH_BYTES, PATH_JSON_SCHEMA
from namenode.api.deps import NameNodeDep, UserDep
from server_common.openapi import error_responses

#: Auth, permissions, missing paths, conflicts (exists, leases), safe mode / no DataNodes (429 and 413: app-wide).
router = APIRouter(tags=["namespace"], responses=error_responses(401, 403, 404, 409, 503))

#: Documented as at most MAX_PATH_BYTES characters (PATH_JSON_SCHEMA): the 4x looser bound here only lets a
#: longer path reach `validate_path`, which names the byte limit.
PathParam = Annotated[str, Query(min_length=1, max_length=MAX_PATH_BYTES * 4, json_schema_extra=PATH_JSON_SCHEMA)]


@router.get(Routes.STATUS)
async def status(path: PathParam, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.stat(path, user=user)


@router.get(Routes.LIST, response_model=DirectoryListing)
async def list_directory(
    path: PathParam,
    namenode: NameNodeDep,
    user: UserDep,
    start_after: Annotated[str, Query(max_length=1024)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT,
) -> Response:
    # Encoded in one call from plain entries, not through 1,000 FileStatus models (namenode/inodes.py).
    page = await namenode.list_page(path, start_after, limit, user=user)
    return Response(page.to_json(), media_type="application/json")


@router.get(Routes.LOCATIONS)
async def locations(
    path: PathParam,
    namenode: NameNodeDep,
    user: UserDep,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    length: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
) -> LocatedBlocks:
    return await namenode.locations(path, offset, length, user=user)


@router.post(Routes.MKDIRS)
async def mkdirs(request: MkdirsRequest, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.mkdirs(request, user=user)


@router.post(Routes.CREATE)
async def create(request: CreateRequest, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.create(request, user=user)


@router.post(Routes.ADD_BLOCK)
async def add_block(request: AddBlockRequest, namenode: NameNodeDep, user: UserDep, http: Request) -> LocatedBlock:
    # The writer's address: if it is a DataNode's host, the first replica goes there.
    return await namenode.add_block(request, user=user, writer_host=http.client.host if http.client else None)


@router.post(Routes.ABANDON_BLOCK)
async def abandon_block(request: AbandonBlockRequest, namenode: NameNodeDep, user: UserDep) -> Ack:
    await namenode.abandon_block(request, user=user)
    return Ack()


@router.post(Routes.RECOVER_PIPELINE)
async def recover_pipeline(request: RecoverPipelineRequest, namenode: NameNodeDep, user: UserDep) -> LocatedBlock:
    return await namenode.recover_pipeline(request, user=user)


@router.post(Routes.COMPLETE)
async def complete(request: CompleteRequest, namenode: NameNodeDep, user: UserDep) -> CompleteResponse:
    return await namenode.complete(request, user=user)


@router.post(Routes.RENAME)
async def rename(request: RenameRequest, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.rename(request, user=user)


@router.post(Routes.DELETE)
async def delete(request: DeleteRequest, namenode: NameNodeDep, user: UserDep) -> DeleteResponse:
    return await namenode.delete(request, user=user)


@router.post(Routes.SET_REPLICATION)
async def set_replication(request: SetReplicationRequest, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.set_replication(request, user=user)


@router.post(Routes.SET_ATTRIBUTES)
async def set_attributes(request: SetAttributesRequest, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.set_attributes(request, user=user)


@router.post(Routes.APPEND)
async def append(request: AppendRequest, namenode: NameNodeDep, user: UserDep) -> AppendResponse:
    return await namenode.append(request, user=user)


@router.post(Routes.RECOVER_LEASE)
async def recover_lease(request: RecoverLeaseRequest, namenode: NameNodeDep, user: UserDep) -> Ack:
    await namenode.recover_lease(request, user=user)
    return Ack()


@router.post(Routes.CONCAT)
async def concat(request: ConcatRequest, namenode: NameNodeDep, user: UserDep) -> FileStatus:
    return await namenode.concat(request, user=user)


@router.get(Routes.CONTENT_SUMMARY)
async def content_summary(path: PathParam, namenode: NameNodeDep, user: UserDep) -> ContentSummary:
    return await namenode.content_summary(path, user=user)


@router.post(Routes.TRUNCATE)
async def truncate(request: TruncateRequest, namenode: NameNodeDep, user: UserDep) -> TruncateResponse:
    return await namenode.truncate(request, user=user)


@router.post(Routes.RENEW_LEASE)
async def renew_lease(request: RenewLeaseRequest, namenode: NameNodeDep, user: UserDep) -> Ack:
    await namenode.renew_lease(request.client_name, user=user)
    return Ack()


@router.post(Routes.REPORT_BAD_BLOCKS)
async def report_bad_blocks(request: ReportBadBlocksRequest, namenode: NameNodeDep, user: UserDep) -> Ack:
    await namenode.report_bad_blocks(request, user=user)
    return Ack()


@router.get(Routes.CLUSTER_INFO)
async def cluster_info(namenode: NameNodeDep) -> ClusterInfo:
    return namenode.info()


@router.get(Routes.CLUSTER_REPORT)
async def cluster_report(namenode: NameNodeDep) -> ClusterReport:
    return await namenode.report()
