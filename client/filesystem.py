"""`AsyncDFSClient`: the SDK's one implementation of the file system protocol (sync twin in sync_client)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import httpx

from client.credentials import ClusterSecretAuth, default_token
from client.file_checksum import file_checksum as checksum_file
from client.file_reader import LOCATION_PREFETCH, DfsInputStream
from client.file_writer import DfsOutputStream, WriteOptions
from client.namenode_rpc import NameNodeRPC
from client.protocol import paths
from client.protocol.client_namenode import (
    MAX_LIST_LIMIT,
    BalancerRequest,
    BalancerStatus,
    ClusterInfo,
    ClusterReport,
    ContentSummary,
    DatanodeInfo,
    DeleteResponse,
    FileStatus,
    FsckReport,
    FsckRequestFlags,
    LocatedBlocks,
    SafeModeAction,
    SafeModeStatus,
)
from client.protocol.errors import (
    DfsError,
    DfsFileNotFoundError,
    DfsIsADirectoryError,
    DfsTimeoutError,
    InvalidArgumentError,
)
from client.protocol.hadoop_checksum import FileChecksum
from client.protocol.security import IssuedToken, TokenInfo
from client.request_id import current_request_id, new_request_id, operation, request_id
from client.tls import client_ssl_context, default_ca_file
from client.transport import make_http_client

# A library logs through stdlib logging: silent unless the application configures it.
log = logging.getLogger(__name__)

DEFAULT_NAMENODE = "http://127.0.0.1:9870"
COPY_CHUNK = 8 * 1024 * 1024
#: Permission bits new files and directories lose unless `umask` (or $DFS_UMASK) says otherwise.
DEFAULT_UMASK = 0o022

ProgressCallback = Callable[[int], None]


def default_namenode() -> str:
    """The NameNode URL from $DFS_NAMENODE, else the local default."""
    return os.environ.get("DFS_NAMENODE") or DEFAULT_NAMENODE


def default_user() -> str:
    """$DFS_USER, else the operating system user (HDFS "simple" authentication)."""
    if user := os.environ.get("DFS_USER"):
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "anonymous"


def default_umask() -> int:
    """$DFS_UMASK (octal, e.g. 027), else 022: Hadoop's fs.permissions.umask-mode default."""
    text = os.environ.get("DFS_UMASK", "").strip()
    if not text:
        return DEFAULT_UMASK
    try:
        umask = int(text, 8)
    except ValueError:
        umask = -1
    if not 0 <= umask <= 0o777:
        raise InvalidArgumentError(f"DFS_UMASK={text!r} is not an octal umask such as 022 or 077")
    return umask


class AsyncDFSClient:
    """Talks to the NameNode for metadata and straight to DataNodes for data.

    Args:
        namenode: base URL of the NameNode (default: $DFS_NAMENODE or http://127.0.0.1:9870).
        user: the user to act as (default: $DFS_USER or the OS user).
        transport: an httpx transport to use instead of the network (tests).
        segment_size: bytes a writer sends per pipeline acknowledgement (memory per writer is ~2x).
        read_timeout: seconds a read (or a NameNode call) may wait for the next bytes before the
            replica (or the call) counts as failed: what bounds a read from a hung DataNode.
        write_timeout: seconds a writer waits for a segment's acknowledgement before the first
            pipeline node counts as failed (a hung node further down is cut off by the DataNodes'
            own --transfer-timeout, so keep this above it plus 5 s per pipeline node).
        retry_wait: seconds to keep retrying a change the NameNode refuses only for now (start-up
            safe mode) before raising.
        ca_file: PEM bundle of the CA(s) that sign the cluster's TLS certificates, for https URLs
            (default: $DFS_CA_FILE, else the system trust store).
        token: a user token from `dfs token create` (default: $DFS_TOKEN or the file $DFS_TOKEN_FILE);
            required when the NameNode runs in token mode, and then it decides who we are.
        secret_file: the cluster secret, to act as the superuser (operators bootstrapping tokens).
        umask: permission bits removed from the mode of every file and directory this client
            creates (default: $DFS_UMASK, else 022), as HDFS's client applies fs.permissions.umask-mode.
    """

    def __init__(
        self,
        namenode: str | None = None,
        *,
        user: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        segment_size: int = 8 * 1024 * 1024,
        read_timeout: float = 30.0,
        write_timeout: float = 120.0,
        retry_wait: float = 30.0,
        ca_file: str | Path | None = None,
        token: str | None = None,
        secret_file: str | Path | None = None,
        umask: int | None = None,
    ) -> None:
        self.namenode = (namenode or default_namenode()).rstrip("/")
        self.user = user or default_user()
        self.umask = default_umask() if umask is None else umask
        self.client_name = f"DFSClient_{uuid.uuid4().hex[:16]}"
        self.http = make_http_client(
            transport=transport,
            timeout=httpx.Timeout(read_timeout, connect=5.0, pool=60.0),
            verify=client_ssl_context(ca_file or default_ca_file()),
        )
        self.rpc = NameNodeRPC(
            self.http,
            self.namenode,
            user=self.user,
            client_name=self.client_name,
            retry_wait_s=retry_wait,
            token=default_token() if token is None else token,
            auth=None if secret_file is None else ClusterSecretAuth.from_file(secret_file),
        )
        self.segment_size = segment_size
        self.write_timeout = httpx.Timeout(write_timeout, connect=10.0)
        self._info: ClusterInfo | None = None
        self._open_writers = 0
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncDFSClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def open_writers(self) -> int:
        """Output streams of this client not yet closed or aborted."""
        return self._open_writers

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await self.http.aclose()

    # --- metadata --------------------------------------------------------------------------

    @operation
    async def info(self) -> ClusterInfo:
        """Cluster id and the defaults new files get."""
        if self._info is None:
            self._info = await self.rpc.cluster_info()
        return self._info

    @operation
    async def status(self, path: str) -> FileStatus:
        return await self.rpc.stat(paths.validate_path(path))

    @operation
    async def exists(self, path: str) -> bool:
        try:
            await self.status(path)
        except DfsFileNotFoundError:
            return False
        return True

    async def iter_dir(self, path: str, page_size: int = MAX_LIST_LIMIT) -> AsyncIterator[FileStatus]:
        """Every entry of a directory, a page at a time (a file lists as itself)."""
        async for entry in self._iter_dir(path, page_size, current_request_id() or new_request_id()):
            yield entry

    async def _iter_dir(self, path: str, page_size: int, rid: str) -> AsyncIterator[FileStatus]:
        # The id is set around each call only: a generator's body runs in its consumer's context.
        start_after = ""
        while True:
            with request_id(rid):
                page = await self.rpc.list_page(paths.validate_path(path), start_after, page_size)
            for entry in page.entries:
                yield entry
            if not page.has_more or not page.entries:
                return
            start_after = page.entries[-1].name

    @operation
    async def list(self, path: str) -> list[FileStatus]:
        return [entry async for entry in self.iter_dir(path)]

    async def walk(self, path: str) -> AsyncIterator[FileStatus]:
        """Every file and directory under `path` (depth first, directories before contents)."""
        async for entry in self._walk(path, current_request_id() or new_request_id()):
            yield entry

    async def _walk(self, path: str, rid: str) -> AsyncIterator[FileStatus]:
        async for entry in self._iter_dir(path, MAX_LIST_LIMIT, rid):
            yield entry
            if entry.is_dir and entry.path != path:
                async for child in self._walk(entry.path, rid):
                    yield child

    @operation
    async def mkdirs(self, path: str, mode: int = 0o777, parents: bool = True) -> FileStatus:
        """Create a directory (and missing parents) with `mode` less the umask; missing parents
        get that plus u+wx, so the creator can go on (HDFS)."""
        return await self.rpc.mkdirs(paths.validate_path(path), self._masked(mode), parents)

    def _masked(self, mode: int) -> int:
        """`mode` less the umask (which covers the rwx bits only: the sticky bit stays)."""
        return mode & ~(self.umask & 0o777)

    @operation
    async def delete(self, path: str, recursive: bool = False) -> DeleteResponse:
        return await self.rpc.delete(paths.validate_path(path), recursive)

    @operation
    async def rename(self, src: str, dst: str, overwrite: bool = False) -> FileStatus:
        return await self.rpc.rename(paths.validate_path(src), paths.validate_path(dst), overwrite)

    @operation
    async def set_replication(self, path: str, replication: int) -> FileStatus:
        return await self.rpc.set_replication(paths.validate_path(path), replication)

    @operation
    async def set_permission(self, path: str, mode: int) -> FileStatus:
        """chmod: the permission bits (and setuid/setgid/sticky) of a file or directory."""
        return await self.rpc.set_attributes(paths.validate_path(path), mode=mode)

    @operation
    async def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> FileStatus:
        """chown/chgrp: change the owner, the group, or both."""
        if owner is None and group is None:
            raise InvalidArgumentError("set_owner needs an owner or a group", path=path)
        return await self.rpc.set_attributes(paths.validate_path(path), owner=owner, group=group)

    @operation
    async def set_times(self, path: str, mtime: int | None = None, atime: int | None = None) -> FileStatus:
        """Set the modification and/or access time, in milliseconds since the epoch."""
        return await self.rpc.set_attributes(paths.validate_path(path), mtime=mtime, atime=atime)

    @operation
    async def concat(self, target: str, sources: Sequence[str]) -> FileStatus:
        """Move the blocks of `sources` (in order) to the end of `target` and remove the sources;
        no data is copied."""
        return await self.rpc.concat(paths.validate_path(target), [paths.validate_path(s) for s in sources])

    @operation
    async def content_summary(self, path: str) -> ContentSummary:
        """Bytes, files and directories under `path` (like `du -s`), computed by the NameNode."""
        return await self.rpc.content_summary(paths.validate_path(path))

    @operation
    async def report(self) -> ClusterReport:
        return await self.rpc.cluster_report()

    # --- administration ----------------------------------------------------------------------

    @operation
    async def create_token(
        self, user: str | None = None, *, ttl_s: float | None = None, description: str = ""
    ) -> IssuedToken:
        """A user token (for `user`, default ourselves; another user needs the superuser)."""
        return await self.rpc.create_token(user, ttl_s, description)

    @operation
    async def list_tokens(self) -> Sequence[TokenInfo]:
        """Unexpired tokens: ours, or everyone's for the superuser."""
        return list((await self.rpc.list_tokens()).tokens)

    @operation
    async def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by id (ours, or any for the superuser); NameNodes refuse it from then on."""
        return await self.rpc.revoke_token(token_id)

    @operation
    async def safemode(self, action: SafeModeAction | None = None) -> SafeModeStatus:
        """Safe mode status; with an action, enter or leave it first."""
        return await self.rpc.safemode(action)

    @operation
    async def decommission(self, datanode: str) -> DatanodeInfo:
        """Start moving a DataNode's replicas elsewhere (by id, URL, host:port or id prefix)."""
        return await self.rpc.set_admin_state(datanode, decommission=True)

    @operation
    async def recommission(self, datanode: str) -> DatanodeInfo:
        return await self.rpc.set_admin_state(datanode, decommission=False)

    @operation
    async def fsck(
        self, path: str = "/", *, files: bool = False, blocks: bool = False, locations: bool = False
    ) -> FsckReport:
        flags = FsckRequestFlags(files=files, blocks=blocks, locations=locations)
        return await self.rpc.fsck(paths.validate_path(path), flags)

    @operation
    async def balancer(self, request: BalancerRequest | None = None, *, stop: bool = False) -> BalancerStatus:
        """Start the balancer (with a request), stop it, or (neither) read its status."""
        return await self.rpc.balancer(request, stop=stop)

    @operation
    async def block_locations(self, path: str, offset: int = 0, length: int | None = None) -> LocatedBlocks:
        """The blocks of a file covering a byte range, with the DataNodes holding each."""
        return await self.rpc.locations(paths.validate_path(path), offset, length)

    @operation
    async def file_checksum(self, path: str) -> FileChecksum:
        """Hadoop's MD5-of-MD5-of-CRC32C checksum, as WebHDFS GETFILECHECKSUM renders it.

        Equal to what a Hadoop cluster (512 bytes per CRC, CRC32C) gives the same bytes
        stored with the same block size, so copies between the two can be compared. A
        file being written is checksummed over its completed blocks.
        """
        return await checksum_file(self.rpc, self.http, paths.validate_path(path))

    # --- files -----------------------------------------------------------------------------

    @operation
    async def create(
        self,
        path: str,
        *,
        overwrite: bool = False,
        replication: int | None = None,
        block_size: int | None = None,
        mode: int = 0o666,
        create_parents: bool = True,
    ) -> DfsOutputStream:
        """Open a new file for writing; `close()` it to make it durable and visible.

        With `create_parents=False` a missing parent directory is an error (POSIX open(2)),
        not created on the way (HDFS create). The file gets `mode` less the umask."""
        info = await self.info()
        status = await self.rpc.create(
            paths.validate_path(path),
            overwrite=overwrite,
            replication=replication,
            block_size=block_size,
            mode=self._masked(mode),
            create_parents=create_parents,
        )
        closed = asyncio.Event()
        stream = DfsOutputStream(
            self.rpc,
            self.http,
            status,
            WriteOptions(
                bytes_per_checksum=info.bytes_per_checksum, segment_size=self.segment_size, timeout=self.write_timeout
            ),
            on_close=closed,
        )
        self._track_writer(closed, info.lease_soft_limit_s)
        return stream

    @operation
    async def append(self, path: str) -> DfsOutputStream:
        """Open an existing, closed file for writing at its end; `close()` it as after `create`.

        The appended bytes start a new block (the file's last block is never reopened), so a
        file appended to many times has short blocks in the middle; reads do not mind."""
        info = await self.info()
        answer = await self.rpc.append(paths.validate_path(path))
        closed = asyncio.Event()
        stream = DfsOutputStream(
            self.rpc,
            self.http,
            answer.status,
            WriteOptions(
                bytes_per_checksum=info.bytes_per_checksum, segment_size=self.segment_size, timeout=self.write_timeout
            ),
            on_close=closed,
            last_block=answer.last,
        )
        self._track_writer(closed, info.lease_soft_limit_s)
        return stream

    @operation
    async def open(self, path: str, offset: int = 0) -> DfsInputStream:
        """Open a file for reading; `offset` (where reading will start) says which block
        locations to fetch first."""
        path = paths.validate_path(path)
        located = await self.rpc.locations(path, offset, LOCATION_PREFETCH)
        stream = DfsInputStream(self.rpc, self.http, path, located)
        stream.seek(offset)
        return stream

    @operation
    async def read_bytes(self, path: str) -> bytes:
        async with await self.open(path) as stream:
            return await stream.read()

    @operation
    async def write_bytes(
        self,
        path: str,
        data: bytes,
        *,
        overwrite: bool = True,
        replication: int | None = None,
        block_size: int | None = None,
    ) -> FileStatus:
        stream = await self.create(path, overwrite=overwrite, replication=replication, block_size=block_size)
        try:
            await stream.write(data)
        except BaseException:
            await stream.abort()
            raise
        return await stream.close()

    @operation
    async def put(
        self,
        source: str | Path | BinaryIO,
        remote: str,
        *,
        overwrite: bool = False,
        replication: int | None = None,
        block_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> FileStatus:
        """Upload a local file (path or binary file object) to `remote`."""
        stream = await self.create(remote, overwrite=overwrite, replication=replication, block_size=block_size)
        try:
            with _open_local(source, "rb") as handle:
                loop = asyncio.get_running_loop()
                while chunk := await loop.run_in_executor(None, handle.read, COPY_CHUNK):
                    await stream.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except BaseException:
            await stream.abort()
            raise
        return await stream.close()

    @operation
    async def get(self, remote: str, target: str | Path | BinaryIO, *, progress: ProgressCallback | None = None) -> int:
        """Download `remote` into a local file (path or binary file object); returns bytes copied."""
        status = await self.status(remote)
        if status.is_dir:
            raise DfsIsADirectoryError(f"{remote} is a directory", path=remote)
        copied = 0
        loop = asyncio.get_running_loop()
        async with await self.open(remote) as stream:
            with _open_local(target, "wb") as handle:
                pending: asyncio.Future[object] | None = None
                async for piece in stream.chunks():
                    if pending is not None:
                        await pending
                    # The local write overlaps fetching the next piece.
                    pending = loop.run_in_executor(None, handle.write, bytes(piece))
                    copied += len(piece)
                    if progress is not None:
                        progress(len(piece))
                if pending is not None:
                    await pending
        return copied

    @operation
    async def truncate(self, path: str, length: int, *, wait: bool = False, timeout: float = 60) -> bool:
        """Cut a closed file to its first `length` bytes, like Hadoop's ``truncate``.

        Returns True when the file is done (the new length fell on a block boundary, or with
        `wait`, once the DataNodes have cut the last block). False means the last block is
        still being cut: the file reads as `length` bytes at once, but stays under
        construction (no append, write or other truncate) until the NameNode closes it.

        Raises:
            InvalidArgumentError: `length` is larger than the file.
            LeaseConflictError: the file is open for writing (or already being truncated).
            DfsIsADirectoryError, DfsFileNotFoundError: `path` is not a file.
            DfsTimeoutError: with `wait`, the file was not closed within `timeout` seconds.
        """
        answer = await self.rpc.truncate(paths.validate_path(path), length)
        if answer.done or not wait:
            return answer.done
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.05
        while (await self.status(path)).under_construction:
            if loop.time() + delay > deadline:
                raise DfsTimeoutError(f"{path} was still being truncated after {timeout:g}s", path=path)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return True

    # --- leases ----------------------------------------------------------------------------

    def _track_writer(self, closed: asyncio.Event, soft_limit_s: float) -> None:
        self._open_writers += 1

        def _done(_: object) -> None:
            self._open_writers -= 1

        asyncio.ensure_future(closed.wait()).add_done_callback(_done)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self._renew_leases(max(0.5, soft_limit_s / 3)))

    async def _renew_leases(self, interval: float) -> None:
        """Renew this client's leases while it has files open for writing."""
        while self._open_writers > 0:
            await asyncio.sleep(interval)
            try:
                with request_id():  # each renewal on its own, not under the first writer's id
                    await self.rpc.renew_lease()
            except DfsError as exc:
                log.warning("lease renewal failed: %s", exc)


@contextlib.contextmanager
def _open_local(target: str | Path | BinaryIO, mode: str) -> Iterator[BinaryIO]:
    if isinstance(target, str | Path):
        with Path(target).open(mode) as handle:
            yield handle  # type: ignore[misc]
    else:
        yield target
