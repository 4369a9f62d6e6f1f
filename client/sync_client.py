"""`DFSClient`: the blocking twin of AsyncDFSClient, sharing all of its protocol code.

A private event loop runs in one daemon thread per client; every blocking call runs the
matching coroutine there. File objects are standard `io` classes (BufferedReader over
a raw reader, BufferedWriter over a raw writer), so they work wherever Python expects
a binary file: shutil.copyfileobj, pandas, tarfile, and so on.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import uvloop

from client.file_reader import DfsInputStream
from client.file_writer import DfsOutputStream
from client.filesystem import AsyncDFSClient, ProgressCallback
from client.protocol.client_namenode import (
    BalancerRequest,
    BalancerStatus,
    ClusterInfo,
    ClusterReport,
    ContentSummary,
    DatanodeInfo,
    DeleteResponse,
    FileStatus,
    FsckReport,
    LocatedBlocks,
    SafeModeAction,
    SafeModeStatus,
)
from client.protocol.errors import NotSupportedError
from client.protocol.hadoop_checksum import FileChecksum
from client.protocol.security import IssuedToken, TokenInfo
from client.request_id import current_request_id, with_request_id

T = TypeVar("T")

IO_BUFFER = 1024 * 1024


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dfs-client-io", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("DFSClient called from its own I/O thread")
        # The caller's request id (a context variable of this thread) travels with the coroutine.
        wrapped = with_request_id(current_request_id(), coroutine)
        return asyncio.run_coroutine_threadsafe(wrapped, self.loop).result()

    def stop(self) -> None:
        """Cancel what is left (e.g. half-read streams), close async generators, stop the loop."""

        async def _drain() -> None:
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(_drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class DFSClient:
    """Blocking client: same arguments and methods as AsyncDFSClient, plus `open()` with file modes."""

    def __init__(self, namenode: str | None = None, **kwargs: Any) -> None:
        self._io = _LoopThread()

        async def _make() -> AsyncDFSClient:
            return AsyncDFSClient(namenode, **kwargs)

        self.aio = self._io.run(_make())
        self._closed = False

    def __enter__(self) -> DFSClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._io.run(self.aio.aclose())
            self._io.stop()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._io.run(coroutine)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of `self.aio` (the async client) on this client's I/O loop and wait:
        for what the blocking API does not offer (exact-length positional reads, aborting a writer)."""
        return self._io.run(coroutine)

    @property
    def namenode(self) -> str:
        return self.aio.namenode

    @property
    def user(self) -> str:
        return self.aio.user

    @property
    def umask(self) -> int:
        return self.aio.umask

    # --- metadata --------------------------------------------------------------------------

    def info(self) -> ClusterInfo:
        return self._run(self.aio.info())

    def status(self, path: str) -> FileStatus:
        return self._run(self.aio.status(path))

    def exists(self, path: str) -> bool:
        return self._run(self.aio.exists(path))

    def list(self, path: str) -> list[FileStatus]:
        return self._run(self.aio.list(path))

    def walk(self, path: str) -> Iterator[FileStatus]:
        async def collect() -> list[FileStatus]:
            return [entry async for entry in self.aio.walk(path)]

        return iter(self._run(collect()))

    def mkdirs(self, path: str, mode: int = 0o777, parents: bool = True) -> FileStatus:
        return self._run(self.aio.mkdirs(path, mode, parents))

    def delete(self, path: str, recursive: bool = False) -> DeleteResponse:
        return self._run(self.aio.delete(path, recursive))

    def rename(self, src: str, dst: str, overwrite: bool = False) -> FileStatus:
        return self._run(self.aio.rename(src, dst, overwrite))

    def set_replication(self, path: str, replication: int) -> FileStatus:
        return self._run(self.aio.set_replication(path, replication))

    def set_permission(self, path: str, mode: int) -> FileStatus:
        return self._run(self.aio.set_permission(path, mode))

    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> FileStatus:
        return self._run(self.aio.set_owner(path, owner, group))

    def set_times(self, path: str, mtime: int | None = None, atime: int | None = None) -> FileStatus:
        return self._run(self.aio.set_times(path, mtime, atime))

    def concat(self, target: str, sources: Sequence[str]) -> FileStatus:
        return self._run(self.aio.concat(target, sources))

    def content_summary(self, path: str) -> ContentSummary:
        return self._run(self.aio.content_summary(path))

    def append(self, path: str) -> io.BufferedWriter:
        """Open an existing file for writing at its end (binary); close it to make the data durable."""
        return io.BufferedWriter(_RawWriter(self, self._run(self.aio.append(path))), IO_BUFFER)

    def report(self) -> ClusterReport:
        return self._run(self.aio.report())

    def create_token(
        self, user: str | None = None, *, ttl_s: float | None = None, description: str = ""
    ) -> IssuedToken:
        return self._run(self.aio.create_token(user, ttl_s=ttl_s, description=description))

    def list_tokens(self) -> Sequence[TokenInfo]:
        return self._run(self.aio.list_tokens())

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._run(self.aio.revoke_token(token_id))

    def safemode(self, action: SafeModeAction | None = None) -> SafeModeStatus:
        return self._run(self.aio.safemode(action))

    def decommission(self, datanode: str) -> DatanodeInfo:
        return self._run(self.aio.decommission(datanode))

    def recommission(self, datanode: str) -> DatanodeInfo:
        return self._run(self.aio.recommission(datanode))

    def fsck(
        self, path: str = "/", *, files: bool = False, blocks: bool = False, locations: bool = False
    ) -> FsckReport:
        return self._run(self.aio.fsck(path, files=files, blocks=blocks, locations=locations))

    def balancer(self, request: BalancerRequest | None = None, *, stop: bool = False) -> BalancerStatus:
        return self._run(self.aio.balancer(request, stop=stop))

    def block_locations(self, path: str, offset: int = 0, length: int | None = None) -> LocatedBlocks:
        return self._run(self.aio.block_locations(path, offset, length))

    def file_checksum(self, path: str) -> FileChecksum:
        """Hadoop's MD5-of-MD5-of-CRC32C checksum of a file (see AsyncDFSClient.file_checksum)."""
        return self._run(self.aio.file_checksum(path))

    # --- data ------------------------------------------------------------------------------

    def put(
        self,
        source: str | Path | BinaryIO,
        remote: str,
        *,
        overwrite: bool = False,
        replication: int | None = None,
        block_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> FileStatus:
        return self._run(
            self.aio.put(
                source,
                remote,
                overwrite=overwrite,
                replication=replication,
                block_size=block_size,
                progress=progress,
            )
        )

    def get(self, remote: str, target: str | Path | BinaryIO, *, progress: ProgressCallback | None = None) -> int:
        return self._run(self.aio.get(remote, target, progress=progress))

    def truncate(self, path: str, length: int, *, wait: bool = False, timeout: float = 60) -> bool:
        """Cut a closed file to `length` bytes; False while its last block is still being cut
        (see AsyncDFSClient.truncate)."""
        return self._run(self.aio.truncate(path, length, wait=wait, timeout=timeout))

    def read_bytes(self, path: str) -> bytes:
        return self._run(self.aio.read_bytes(path))

    def write_bytes(
        self,
        path: str,
        data: bytes,
        *,
        overwrite: bool = True,
        replication: int | None = None,
        block_size: int | None = None,
    ) -> FileStatus:
        return self._run(
            self.aio.write_bytes(path, data, overwrite=overwrite, replication=replication, block_size=block_size)
        )

    def open(
        self,
        path: str,
        mode: str = "rb",
        *,
        replication: int | None = None,
        block_size: int | None = None,
        encoding: str | None = None,
    ) -> io.IOBase:
        """Open a file: "rb"/"r" to read (seekable), "wb"/"w" to (over)write, "xb"/"x" to create new,
        "ab"/"a" to append."""
        kind = mode.replace("b", "").replace("t", "")
        buffered: io.BufferedReader | io.BufferedWriter
        if kind == "r":
            buffered = io.BufferedReader(_RawReader(self, self._run(self.aio.open(path))), IO_BUFFER)
        elif kind in ("w", "x"):
            stream = self._run(
                self.aio.create(path, overwrite=kind == "w", replication=replication, block_size=block_size)
            )
            buffered = io.BufferedWriter(_RawWriter(self, stream), IO_BUFFER)
        elif kind == "a":
            buffered = io.BufferedWriter(_RawWriter(self, self._run(self.aio.append(path))), IO_BUFFER)
        else:
            raise NotSupportedError(f"mode {mode!r} is not supported (use r, w, x or a, with or without b)")
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8")


class _RawReader(io.RawIOBase):
    def __init__(self, client: DFSClient, stream: DfsInputStream) -> None:
        self._client = client
        self._stream = stream
        self.name = stream.path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        piece = self._client._run(self._stream.read_some(len(view)))
        view[: len(piece)] = piece
        return len(piece)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        if not self.closed:
            self._client._run(self._stream.close())
        super().close()


class _RawWriter(io.RawIOBase):
    def __init__(self, client: DFSClient, stream: DfsOutputStream) -> None:
        self._client = client
        self._stream = stream
        self.name = stream.path

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._client._run(self._stream.write(data))

    def close(self) -> None:
        if not self.closed:
            try:
                self._client._run(self._stream.close())
            finally:
                super().close()
