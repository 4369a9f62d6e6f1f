"""WebHDFS REST API v1 on the NameNode: namespace operations answered here, data operations
redirected (307) to a DataNode, or, in proxy mode, to the NameNode itself with `data=true`.

Semantics follow Hadoop's NamenodeWebHdfsMethods, including its quirks that clients rely on:
RENAME and DELETE answer `{"boolean": false}` instead of failing for a missing source, the
old-style RENAME moves a file into an existing destination directory, and LISTSTATUS of a file
lists the file itself with an empty pathSuffix.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response

from client.protocol import paths
from client.protocol.client_namenode import (
    MAX_LIST_LIMIT,
    ConcatRequest,
    DeleteRequest,
    FileStatus,
    MkdirsRequest,
    RenameRequest,
    SetAttributesRequest,
    SetReplicationRequest,
    TruncateRequest,
)
from client.protocol.common import DatanodeRef
from client.protocol.errors import (
    DfsError,
    DfsFileNotFoundError,
    DfsIsADirectoryError,
    DfsNotADirectoryError,
    UnauthenticatedError,
)
from client.protocol.security import HEADER_AUTHORIZATION, InvalidCredentialError, UserTokenClaims, read_claims
from client.protocol.webhdfs import (
    FILE_NOT_FOUND,
    ILLEGAL_ARGUMENT,
    IO_EXCEPTION,
    LIST_BATCH_SIZE,
    PREFIX,
    REDIRECT_OPS,
    UNSUPPORTED,
    block_locations_json,
    content_summary_json,
    file_status_json,
    permission_string,
    quota_usage_json,
    server_defaults_json,
)
from namenode.api.deps import NameNodeDep
from namenode.auth import bearer_token
from namenode.permissions import FsAction
from namenode.service import NameNode
from server_common.webhdfs import Caller, Params, WebHdfsError, json_response, request_path, run, webhdfs_url

router = APIRouter(tags=["webhdfs"])

METHODS = ["GET", "PUT", "POST", "DELETE"]
#: The lease holder named for WebHDFS truncates (the NameNode itself recovers the block).
TRUNCATE_CLIENT = "DFSClient_webhdfs_truncate"


@router.api_route(PREFIX, methods=METHODS, include_in_schema=False)
@router.api_route(PREFIX + "/{raw_path:path}", methods=METHODS, include_in_schema=False)
async def webhdfs(request: Request, namenode: NameNodeDep, raw_path: str = "") -> Response:
    params = Params(request)
    op = (params.get("op") or "").upper()

    async def handle() -> Response:
        return await NameNodeWebHdfs(namenode, request, params).dispatch(raw_path)

    return await run(op, handle)


class NameNodeWebHdfs:
    """One WebHDFS request against the NameNode."""

    def __init__(self, namenode: NameNode, request: Request, params: Params) -> None:
        self.namenode = namenode
        self.request = request
        self.params = params

    @property
    def superuser(self) -> str:
        return self.namenode.superuser

    async def dispatch(self, raw_path: str) -> Response:
        op = self.params.op(self.request.method)
        path = request_path(raw_path)
        user = self._authenticated_user()
        if op in REDIRECT_OPS:
            return await self._data(op, path, user)
        handler = getattr(self, "op_" + op.lower(), None)
        if handler is None:
            raise WebHdfsError(UNSUPPORTED, f"{op} is not supported")
        response: Response = await handler(path, user)
        return response

    def _credential(self) -> str | None:
        """The caller's token: `delegation=` (Hadoop's delegation tokens) or a bearer header."""
        if token := self.params.get("delegation"):
            return token
        authorization = self.request.headers.get(HEADER_AUTHORIZATION)
        return None if authorization is None else bearer_token(authorization)

    def _authenticated_user(self) -> str:
        """A token's user, else (simple mode only) `user.name`/`doas`, as namenode.auth decides."""
        token = self._credential()
        if token is not None:
            return self.namenode.auth.token_user(token)
        if self.namenode.auth.token_mode:
            raise UnauthenticatedError(
                "this cluster requires a token: pass delegation=<token> (from `dfs token create`) "
                "or an `Authorization: Bearer` header"
            )
        return self.params.user(self.superuser)

    # --- data operations: redirect to a DataNode (or, in proxy mode, serve here) ----------------

    async def _data(self, op: str, path: str, user: str) -> Response:
        settings = self.namenode.settings
        if settings.webhdfs_proxy and self.params.boolean("data", False):
            return await self._serve_data(op, path, user)
        if op != "CREATE":
            status = await self.namenode.stat(path, user=user)
            if status.is_dir:
                raise WebHdfsError(FILE_NOT_FOUND, f"Path is not a file: {path}")
        query = {key: value for key, value in self.params.values.items() if key not in ("user.name", "doas")}
        query["user.name"] = user
        query["op"] = op
        if (token := self._credential()) is not None:
            query["delegation"] = token  # the DataNode acts with it, as Hadoop's redirects do
        if settings.webhdfs_proxy:
            query["data"] = "true"
            base = str(self.request.base_url)
        else:
            node = await self._choose_datanode(op, path, user)
            query["namenoderpcaddress"] = self.request.url.netloc
            base = node.url
        location = webhdfs_url(base, path, query)
        if self.params.boolean("noredirect", False):
            return json_response({"Location": location})
        return Response(status_code=307, headers={"Location": location}, media_type="application/json")

    async def _choose_datanode(self, op: str, path: str, user: str) -> DatanodeRef:
        client_host = self.request.client.host if self.request.client else None
        if op == "OPEN":
            offset = self.params.integer("offset", 0, minimum=0) or 0
            located = await self.namenode.locations(path, offset, 1, user=user)
            holders = [node for block in located.blocks for node in block.locations]
            local = [node for node in holders if client_host and _host(node.url) == client_host]
            if local or holders:
                return (local or holders)[0]
        node = await self.namenode.pick_datanode(client_host)
        if node is None:
            raise WebHdfsError(IO_EXCEPTION, "Failed to find datanode, suggest to check cluster health.")
        return node

    async def _serve_data(self, op: str, path: str, name: str) -> Response:
        user = Caller(name, self._credential() or "")
        ops = self.namenode.webhdfs_data_ops(_own_url(self.request))
        if op == "CREATE":
            return await ops.create(self.request, path, self.params, user)
        if op == "APPEND":
            return await ops.append(self.request, path, self.params, user)
        if op == "OPEN":
            return await ops.open(path, self.params, user)
        return await ops.checksum(path, user)

    # --- GET ----------------------------------------------------------------------------------

    async def op_getfilestatus(self, path: str, user: str) -> Response:
        return json_response({"FileStatus": file_status_json(await self.namenode.stat(path, user=user), "")})

    async def op_liststatus(self, path: str, user: str) -> Response:
        entries: list[dict[str, Any]] = []
        after = ""
        while True:
            page = await self.namenode.list_dir(path, after, MAX_LIST_LIMIT, user=user)
            entries.extend(_listing_entry(status, path) for status in page.entries)
            if not page.has_more or not page.entries:
                break
            after = page.entries[-1].name
        return json_response({"FileStatuses": {"FileStatus": entries}})

    async def op_liststatus_batch(self, path: str, user: str) -> Response:
        after = self.params.get("startafter", "") or ""
        page = await self.namenode.list_dir(path, after, LIST_BATCH_SIZE, user=user)
        remaining = 0
        if page.has_more and page.entries:
            remaining = await self.namenode.entries_after(path, page.entries[-1].name, user=user)
        return json_response(
            {
                "DirectoryListing": {
                    "partialListing": {
                        "FileStatuses": {"FileStatus": [_listing_entry(status, path) for status in page.entries]}
                    },
                    "remainingEntries": remaining,
                }
            }
        )

    async def op_getcontentsummary(self, path: str, user: str) -> Response:
        return json_response(content_summary_json(await self.namenode.content_summary(path, user=user)))

    async def op_getquotausage(self, path: str, user: str) -> Response:
        return json_response(quota_usage_json(await self.namenode.content_summary(path, user=user)))

    async def op_gethomedirectory(self, path: str, user: str) -> Response:
        return json_response({"Path": f"/user/{user}"})

    async def op_gettrashroot(self, path: str, user: str) -> Response:
        return json_response({"Path": f"/user/{user}/.Trash"})

    async def op_getfileblocklocations(self, path: str, user: str) -> Response:
        offset = self.params.integer("offset", 0, minimum=0) or 0
        length = self.params.integer("length", None, minimum=0)
        try:
            located = await self.namenode.locations(path, offset, length, user=user)
        except DfsIsADirectoryError:
            raise WebHdfsError(FILE_NOT_FOUND, f"Path is not a file: {path}") from None
        return json_response(block_locations_json(located.blocks))

    async def op_getserverdefaults(self, path: str, user: str) -> Response:
        return json_response(server_defaults_json(self.namenode.info()))

    async def op_getstatus(self, path: str, user: str) -> Response:
        report = await self.namenode.report()
        return json_response(
            {"FsStatus": {"capacity": report.capacity, "used": report.used, "remaining": report.remaining}}
        )

    async def op_getaclstatus(self, path: str, user: str) -> Response:
        status = await self.namenode.stat(path, user=user)
        # No ACL entries exist: the status is the mode bits, as Hadoop shows for a plain inode.
        return json_response(
            {
                "AclStatus": {
                    "entries": [],
                    "group": status.group,
                    "owner": status.owner,
                    "permission": permission_string(status.mode),
                    "stickyBit": bool(status.mode & 0o1000),
                }
            }
        )

    async def op_getdelegationtoken(self, path: str, user: str) -> Response:
        """A user token for the caller, in Hadoop's Token JSON (`urlString` is the token text)."""
        issued = await self.namenode.user_tokens.issue(user, user, None, "webhdfs GETDELEGATIONTOKEN")
        return json_response({"Token": {"urlString": issued.token}})

    async def op_canceldelegationtoken(self, path: str, user: str) -> Response:
        """Revoke the token given as `token=` (the caller's own, or any for the superuser)."""
        text = self.params.get("token")
        if text is None:
            raise WebHdfsError(ILLEGAL_ARGUMENT, 'Required param "token" is missing')
        try:
            claims = read_claims(text, UserTokenClaims)
        except InvalidCredentialError as exc:
            raise WebHdfsError(ILLEGAL_ARGUMENT, f"not a token: {exc}") from None
        await self.namenode.user_tokens.revoke(claims.token_id, user, self.namenode.is_superuser(user))
        return Response(status_code=200, media_type="application/json")

    async def op_checkaccess(self, path: str, user: str) -> Response:
        action = self.params.get("fsaction")
        if action is None or not re.fullmatch(r"[r-][w-][x-]", action):
            raise WebHdfsError(
                ILLEGAL_ARGUMENT, f'Invalid value for webhdfs parameter "fsaction": {action!r} (expected e.g. r-x)'
            )
        await self.namenode.check_access(path, FsAction.from_symbolic(action), user=user)
        return Response(status_code=200, media_type="application/json")

    # --- PUT ----------------------------------------------------------------------------------

    async def op_mkdirs(self, path: str, user: str) -> Response:
        mode = self.params.permission(0o755)
        await self.namenode.mkdirs(MkdirsRequest(path=path, mode=mode if mode is not None else 0o755), user=user)
        return json_response({"boolean": True})

    async def op_rename(self, path: str, user: str) -> Response:
        destination = self.params.get("destination")
        if destination is None or not destination.startswith("/"):
            raise WebHdfsError(
                ILLEGAL_ARGUMENT, f'Invalid value for webhdfs parameter "destination": {destination!r} is not absolute'
            )
        destination = request_path(destination)
        options = {option.strip().upper() for option in (self.params.get("renameoptions") or "").split(",")}
        options.discard("")
        options.discard("NONE")
        if options - {"OVERWRITE"}:
            raise WebHdfsError(ILLEGAL_ARGUMENT, f"unknown rename options: {sorted(options)}")
        if options:  # rename2: exact destination, errors raised
            await self.namenode.rename(RenameRequest(src=path, dst=destination, overwrite=True), user=user)
            return Response(status_code=200, media_type="application/json")
        return json_response({"boolean": await self._old_rename(path, destination, user)})

    async def _old_rename(self, src: str, dst: str, user: str) -> bool:
        """Hadoop's original rename: into an existing directory; False instead of most errors."""
        if src == paths.ROOT:
            return False
        try:
            target = await self.namenode.stat(dst, user=user)
        except DfsFileNotFoundError:
            target = None
        except DfsNotADirectoryError:
            return False
        if target is not None:
            if not target.is_dir:
                return src == dst
            dst = paths.join(dst, paths.basename(src))
        try:
            await self.namenode.rename(RenameRequest(src=src, dst=dst), user=user)
        except DfsFileNotFoundError:
            return False
        except DfsError as exc:
            if exc.code in ("FILE_EXISTS", "NOT_A_DIRECTORY", "INVALID_ARGUMENT"):
                return False
            raise
        return True

    async def op_setreplication(self, path: str, user: str) -> Response:
        replication = self.params.integer("replication", None, minimum=1)
        if replication is None:
            replication = self.namenode.info().default_replication
        try:
            await self.namenode.set_replication(SetReplicationRequest(path=path, replication=replication), user=user)
        except (DfsFileNotFoundError, DfsIsADirectoryError):
            return json_response({"boolean": False})
        return json_response({"boolean": True})

    async def op_setpermission(self, path: str, user: str) -> Response:
        mode = self.params.permission(0o755)
        await self.namenode.set_attributes(SetAttributesRequest(path=path, mode=mode), user=user)
        return Response(status_code=200, media_type="application/json")

    async def op_setowner(self, path: str, user: str) -> Response:
        owner, group = self.params.get("owner"), self.params.get("group")
        if owner is None and group is None:
            raise WebHdfsError(ILLEGAL_ARGUMENT, "Both owner and group are empty.")
        await self.namenode.set_attributes(SetAttributesRequest(path=path, owner=owner, group=group), user=user)
        return Response(status_code=200, media_type="application/json")

    async def op_settimes(self, path: str, user: str) -> Response:
        mtime = self.params.integer("modificationtime", -1, minimum=-1)
        atime = self.params.integer("accesstime", -1, minimum=-1)
        await self.namenode.set_attributes(SetAttributesRequest(path=path, mtime=mtime, atime=atime), user=user)
        return Response(status_code=200, media_type="application/json")

    # --- POST ---------------------------------------------------------------------------------

    async def op_concat(self, path: str, user: str) -> Response:
        sources = [request_path(s) for s in (self.params.get("sources") or "").split(",") if s]
        if not sources:
            raise WebHdfsError(ILLEGAL_ARGUMENT, 'Invalid value for webhdfs parameter "sources": no source given')
        await self.namenode.concat(ConcatRequest(target=path, sources=sources), user=user)
        return Response(status_code=200, media_type="application/json")

    async def op_truncate(self, path: str, user: str) -> Response:
        length = self.params.integer("newlength", None, minimum=0)
        if length is None:
            raise WebHdfsError(ILLEGAL_ARGUMENT, 'Invalid value for webhdfs parameter "newlength": missing')
        answer = await self.namenode.truncate(
            TruncateRequest(path=path, length=length, client_name=TRUNCATE_CLIENT), user=user
        )
        return json_response({"boolean": answer.done})

    # --- DELETE -------------------------------------------------------------------------------

    async def op_delete(self, path: str, user: str) -> Response:
        if path == paths.ROOT:
            return json_response({"boolean": False})
        recursive = self.params.boolean("recursive", False)
        try:
            await self.namenode.delete(DeleteRequest(path=path, recursive=recursive), user=user)
        except (DfsFileNotFoundError, DfsNotADirectoryError):
            return json_response({"boolean": False})
        return json_response({"boolean": True})


def _listing_entry(status: FileStatus, listed: str) -> dict[str, Any]:
    """A listing entry: the child's name, or "" when the listed path is the file itself."""
    return file_status_json(status, "" if status.path == listed else status.name)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].rsplit(":", 1)[0]


def _own_url(request: Request) -> str:
    """This NameNode's own loopback URL, for its in-process SDK in proxy mode.

    The bound address, never the Host header (a client must not choose whom we call); with TLS
    the certificate must therefore name it (127.0.0.1 for a wildcard bind)."""
    server = request.scope.get("server")
    if server is None:
        return str(request.base_url).rstrip("/")
    host, port = server
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"{request.url.scheme}://{host}:{port}"
