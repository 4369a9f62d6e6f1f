"""Control path: typed calls to the NameNode's native API (routes in client.protocol)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from client.backoff import Backoff, RetryBudget
from client.identity import acting_user
from client.protocol.client_namenode import (
    DEFAULT_LIST_LIMIT,
    AbandonBlockRequest,
    Ack,
    AddBlockRequest,
    AdminRoutes,
    AppendRequest,
    AppendResponse,
    BalancerRequest,
    BalancerStatus,
    ClusterInfo,
    ClusterReport,
    CommittedBlock,
    CompleteRequest,
    CompleteResponse,
    ConcatRequest,
    ContentSummary,
    CreateRequest,
    DatanodeInfo,
    DatanodeSelector,
    DeleteRequest,
    DeleteResponse,
    DirectoryListing,
    FileStatus,
    FsckReport,
    FsckRequestFlags,
    LocatedBlock,
    LocatedBlocks,
    MkdirsRequest,
    RecoverLeaseRequest,
    RecoverPipelineRequest,
    RenameRequest,
    RenewLeaseRequest,
    ReportBadBlocksRequest,
    Routes,
    SafeModeAction,
    SafeModeRequest,
    SafeModeStatus,
    SetAttributesRequest,
    SetReplicationRequest,
    TruncateRequest,
    TruncateResponse,
)
from client.protocol.common import HEADER_CLIENT_NAME, HEADER_USER, ExtendedBlock
from client.protocol.errors import DfsError, NotLeaderError, ProtocolError, invalid_argument
from client.protocol.security import (
    HEADER_AUTHORIZATION,
    CreateTokenRequest,
    IssuedToken,
    TokenInfo,
    TokenList,
    TokenRoutes,
)
from client.transport import error_from_transport, namenode_urls, raise_for_error

M = TypeVar("M", bound=BaseModel)

#: A connection that was never established is always safe to retry, whatever the call.
CONNECT_RETRIES = 3
#: Methods whose calls change nothing, so any transport failure may be retried on another NameNode.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})


def _build(model: type[M], **fields: Any) -> M:
    """A request model, or INVALID_ARGUMENT naming the bad field (before any round trip)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise invalid_argument(exc) from None


class NameNodeRPC:
    """One method per NameNode operation; raises the DfsError the NameNode reported."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        user: str,
        client_name: str,
        retry_wait_s: float = 30.0,
        token: str = "",
        auth: httpx.Auth | None = None,
    ) -> None:
        self.retry_wait_s = retry_wait_s
        self.backoff = Backoff()
        self.http = http
        #: Every NameNode of the cluster; calls go to the one that answered last (failover order).
        self.urls = namenode_urls(base_url)
        self._active = 0
        self.user = user
        self.client_name = client_name
        self._headers = {HEADER_USER: user, HEADER_CLIENT_NAME: client_name}
        if token:
            self._headers[HEADER_AUTHORIZATION] = f"Bearer {token}"
        #: Signs requests with the cluster secret (client.credentials.ClusterSecretAuth), if given.
        self.auth = auth

    @property
    def base_url(self) -> str:
        """The NameNode calls go to now."""
        return self.urls[self._active]

    def _fail_over(self, failed: str) -> None:
        """Move on to the next NameNode (unless another call already did)."""
        if self.base_url == failed and len(self.urls) > 1:
            self._active = (self._active + 1) % len(self.urls)

    async def _call(
        self,
        method: str,
        route: str,
        answer: type[M],
        *,
        params: dict[str, Any] | None = None,
        body: BaseModel | None = None,
    ) -> M:
        """One call; refusals the NameNode marks as passing (start-up safe mode, 429 from its rate
        limit) are retried with jittered backoff for up to `retry_wait_s` seconds.

        Retrying is safe whatever the call: `retry_after_s` is only set on refusals answered
        before the operation ran (client.protocol.errors.ErrorBody)."""
        budget: RetryBudget | None = None
        redirects = 0
        while True:
            target = self.base_url
            try:
                return await self._call_once(method, route, answer, params=params, body=body)
            except NotLeaderError:
                # Leader-only work (the balancer) asked of another NameNode: ask the next one.
                redirects += 1
                if redirects >= len(self.urls):
                    raise
                self._fail_over(target)
                continue
            except DfsError as exc:
                if exc.retry_after_s is None:
                    raise
                budget = budget or RetryBudget(self.retry_wait_s, self.backoff)
                if not await budget.wait(exc.retry_after_s):
                    raise

    async def _call_once(
        self,
        method: str,
        route: str,
        answer: type[M],
        *,
        params: dict[str, Any] | None = None,
        body: BaseModel | None = None,
    ) -> M:
        content = body.model_dump_json() if body is not None else None
        headers = dict(self._headers)
        if (acting := acting_user()) is not None:
            headers[HEADER_USER] = acting  # one call for another local user (client.identity)
        if content is not None:
            headers["content-type"] = "application/json"
        # With several NameNodes a failed connection moves on to the next at once; a full round
        # of failures waits a little before the next. A call that may have reached a NameNode
        # is retried elsewhere only if it changes nothing (GET).
        attempts = CONNECT_RETRIES * len(self.urls)
        for attempt in range(attempts):
            target = self.base_url
            try:
                response = await self.http.request(
                    method,
                    target + route,
                    params=params,
                    content=content,
                    headers=headers,
                    auth=self.auth or httpx.USE_CLIENT_DEFAULT,
                )
                break
            except httpx.HTTPError as exc:
                retriable = isinstance(exc, httpx.ConnectError) or (
                    method in IDEMPOTENT_METHODS and isinstance(exc, httpx.TransportError)
                )
                if not retriable or attempt == attempts - 1:
                    raise error_from_transport(exc, target) from exc
                self._fail_over(target)
                if (attempt + 1) % len(self.urls) == 0:
                    await asyncio.sleep(0.1 * 2 ** (attempt // len(self.urls)))
        await raise_for_error(response)
        try:
            return answer.model_validate_json(response.content)
        except ValueError as exc:
            raise ProtocolError(f"unreadable answer from the NameNode on {route}: {exc}") from exc

    # --- namespace -------------------------------------------------------------------------

    async def stat(self, path: str) -> FileStatus:
        return await self._call("GET", Routes.STATUS, FileStatus, params={"path": path})

    async def list_page(self, path: str, start_after: str = "", limit: int = DEFAULT_LIST_LIMIT) -> DirectoryListing:
        params = {"path": path, "start_after": start_after, "limit": limit}
        return await self._call("GET", Routes.LIST, DirectoryListing, params=params)

    async def locations(self, path: str, offset: int = 0, length: int | None = None) -> LocatedBlocks:
        params: dict[str, Any] = {"path": path, "offset": offset}
        if length is not None:
            params["length"] = length
        return await self._call("GET", Routes.LOCATIONS, LocatedBlocks, params=params)

    async def mkdirs(self, path: str, mode: int = 0o755, parents: bool = True) -> FileStatus:
        return await self._call(
            "POST", Routes.MKDIRS, FileStatus, body=_build(MkdirsRequest, path=path, mode=mode, parents=parents)
        )

    async def create(
        self,
        path: str,
        *,
        overwrite: bool,
        replication: int | None,
        block_size: int | None,
        mode: int,
        create_parents: bool = True,
    ) -> FileStatus:
        request = _build(
            CreateRequest,
            path=path,
            client_name=self.client_name,
            overwrite=overwrite,
            replication=replication,
            block_size=block_size,
            mode=mode,
            create_parents=create_parents,
        )
        return await self._call("POST", Routes.CREATE, FileStatus, body=request)

    async def rename(self, src: str, dst: str, overwrite: bool = False) -> FileStatus:
        return await self._call(
            "POST", Routes.RENAME, FileStatus, body=_build(RenameRequest, src=src, dst=dst, overwrite=overwrite)
        )

    async def delete(self, path: str, recursive: bool = False) -> DeleteResponse:
        return await self._call(
            "POST", Routes.DELETE, DeleteResponse, body=_build(DeleteRequest, path=path, recursive=recursive)
        )

    async def set_replication(self, path: str, replication: int) -> FileStatus:
        return await self._call(
            "POST",
            Routes.SET_REPLICATION,
            FileStatus,
            body=_build(SetReplicationRequest, path=path, replication=replication),
        )

    async def set_attributes(self, path: str, **fields: Any) -> FileStatus:
        """Any of mode, owner, group, mtime, atime (milliseconds); the others are kept."""
        body = _build(SetAttributesRequest, path=path, **fields)
        return await self._call("POST", Routes.SET_ATTRIBUTES, FileStatus, body=body)

    async def append(self, path: str) -> AppendResponse:
        body = _build(AppendRequest, path=path, client_name=self.client_name)
        return await self._call("POST", Routes.APPEND, AppendResponse, body=body)

    async def recover_lease(self, path: str, file_id: int) -> None:
        body = _build(RecoverLeaseRequest, path=path, file_id=file_id, client_name=self.client_name)
        await self._call("POST", Routes.RECOVER_LEASE, Ack, body=body)

    async def concat(self, target: str, sources: list[str]) -> FileStatus:
        return await self._call(
            "POST", Routes.CONCAT, FileStatus, body=_build(ConcatRequest, target=target, sources=sources)
        )

    async def content_summary(self, path: str) -> ContentSummary:
        return await self._call("GET", Routes.CONTENT_SUMMARY, ContentSummary, params={"path": path})

    # --- writing ---------------------------------------------------------------------------

    async def add_block(
        self, path: str, file_id: int, previous: CommittedBlock | None, excluded: list[str]
    ) -> LocatedBlock:
        request = _build(
            AddBlockRequest,
            path=path,
            file_id=file_id,
            client_name=self.client_name,
            previous=previous,
            excluded_nodes=excluded,
        )
        return await self._call("POST", Routes.ADD_BLOCK, LocatedBlock, body=request)

    async def abandon_block(self, path: str, file_id: int, block: ExtendedBlock) -> None:
        request = _build(AbandonBlockRequest, path=path, file_id=file_id, client_name=self.client_name, block=block)
        await self._call("POST", Routes.ABANDON_BLOCK, Ack, body=request)

    async def recover_pipeline(
        self, path: str, file_id: int, block: ExtendedBlock, surviving: list[str]
    ) -> LocatedBlock:
        request = _build(
            RecoverPipelineRequest,
            path=path,
            file_id=file_id,
            client_name=self.client_name,
            block=block,
            surviving=surviving,
        )
        return await self._call("POST", Routes.RECOVER_PIPELINE, LocatedBlock, body=request)

    async def complete(self, path: str, file_id: int, last: CommittedBlock | None) -> CompleteResponse:
        request = _build(CompleteRequest, path=path, file_id=file_id, client_name=self.client_name, last=last)
        return await self._call("POST", Routes.COMPLETE, CompleteResponse, body=request)

    async def renew_lease(self) -> None:
        await self._call("POST", Routes.RENEW_LEASE, Ack, body=_build(RenewLeaseRequest, client_name=self.client_name))

    async def report_bad_blocks(self, request: ReportBadBlocksRequest) -> None:
        await self._call("POST", Routes.REPORT_BAD_BLOCKS, Ack, body=request)

    async def truncate(self, path: str, length: int) -> TruncateResponse:
        request = _build(TruncateRequest, path=path, length=length, client_name=self.client_name)
        return await self._call("POST", Routes.TRUNCATE, TruncateResponse, body=request)

    # --- cluster ---------------------------------------------------------------------------

    async def cluster_info(self) -> ClusterInfo:
        return await self._call("GET", Routes.CLUSTER_INFO, ClusterInfo)

    async def cluster_report(self) -> ClusterReport:
        return await self._call("GET", Routes.CLUSTER_REPORT, ClusterReport)

    # --- administration ----------------------------------------------------------------------

    async def create_token(self, user: str | None, ttl_s: float | None, description: str) -> IssuedToken:
        request = _build(CreateTokenRequest, user=user, ttl_s=ttl_s, description=description)
        return await self._call("POST", TokenRoutes.TOKENS, IssuedToken, body=request)

    async def list_tokens(self) -> TokenList:
        return await self._call("GET", TokenRoutes.TOKENS, TokenList)

    async def revoke_token(self, token_id: str) -> TokenInfo:
        route = TokenRoutes.TOKEN.format(token_id=quote(token_id, safe=""))
        return await self._call("DELETE", route, TokenInfo)

    async def safemode(self, action: SafeModeAction | None = None) -> SafeModeStatus:
        if action is None:
            return await self._call("GET", AdminRoutes.SAFEMODE, SafeModeStatus)
        return await self._call(
            "POST", AdminRoutes.SAFEMODE, SafeModeStatus, body=_build(SafeModeRequest, action=action)
        )

    async def set_admin_state(self, datanode: str, *, decommission: bool) -> DatanodeInfo:
        route = AdminRoutes.DECOMMISSION if decommission else AdminRoutes.RECOMMISSION
        return await self._call("POST", route, DatanodeInfo, body=_build(DatanodeSelector, datanode=datanode))

    async def fsck(self, path: str, flags: FsckRequestFlags) -> FsckReport:
        params = {"path": path, **{name: str(value).lower() for name, value in flags.model_dump().items()}}
        return await self._call("GET", AdminRoutes.FSCK, FsckReport, params=params)

    async def balancer(self, request: BalancerRequest | None = None, *, stop: bool = False) -> BalancerStatus:
        if stop:
            return await self._call("DELETE", AdminRoutes.BALANCER, BalancerStatus)
        if request is None:
            return await self._call("GET", AdminRoutes.BALANCER, BalancerStatus)
        return await self._call("POST", AdminRoutes.BALANCER, BalancerStatus, body=request)
