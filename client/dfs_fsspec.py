"""`DFSFileSystem`: fsspec's view of the cluster, so `dfs://host:port/path` works in pandas, pyarrow, dask.

Registered under the `fsspec.specs` entry point as protocol ``dfs``; the URL's host:port is the
NameNode's HTTP address. Everything runs on the blocking SDK (`DFSClient`). Metadata calls map
one to one onto NameNode calls (recursive delete and rename happen on the NameNode, never file
by file). A file opened "rb" keeps one SDK input stream for its whole life and fetches each
requested range with a positional read (`pread`) that asks DataNodes for exactly that range,
so parquet footers and column chunks cost what they are, not the whole file or block. A file
opened "wb"/"xb"/"ab" streams into an SDK output stream; `close()` completes the file, an
exception or `discard()` aborts it.

Reads and writes go through the SDK's async streams on the client's own I/O loop (`_run`):
the blocking file objects cannot read an exact length in one call or abort a writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import posixpath
import re
import stat
import threading
import uuid
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from fsspec.utils import stringify_path

from client.file_reader import DfsInputStream
from client.file_writer import DfsOutputStream
from client.filesystem import AsyncDFSClient, default_namenode
from client.protocol.client_namenode import FileStatus
from client.protocol.errors import DfsError, DfsIsADirectoryError, DfsNotADirectoryError
from client.sync_client import DFSClient
from client.tls import default_ca_file

# A library logs through stdlib logging: silent unless the application configures it.
log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PORT", "DFSFile", "DFSFileSystem"]

T = TypeVar("T")

#: The NameNode's HTTP port when a URL names none.
DEFAULT_PORT = 9870
#: fsspec buffer size of a file: the coalescing size of small writes, the chunk of `readuntil`.
FILE_BUFFER = 1024 * 1024
_NOT_THERE = (FileNotFoundError, NotADirectoryError)
#: Clean-ups scheduled on a client's loop by the garbage collector (the loop keeps only weak references).
_cleanups: set[asyncio.Task[None]] = set()


def _run(client: DFSClient, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on the client's I/O loop and wait for it (see the module docstring)."""
    return client.run(coroutine)


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _on_loop(loop: asyncio.AbstractEventLoop | None) -> bool:
    """Is this thread running `loop` (where blocking on it would deadlock)?"""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _entry(status: FileStatus) -> dict[str, Any]:
    """An fsspec info dict; `mode` is a full st_mode (type bits too), times are epoch seconds."""
    kind = stat.S_IFDIR if status.is_dir else stat.S_IFREG
    return {
        "name": status.path,
        "size": 0 if status.is_dir else status.length,
        "type": "directory" if status.is_dir else "file",
        "mode": kind | status.mode,
        "owner": status.owner,
        "group": status.group,
        "mtime": status.mtime / 1000,
        "atime": status.atime / 1000,
        "replication": status.replication,
        "block_size": status.block_size,
        "file_id": status.file_id,
        "under_construction": status.under_construction,
    }


def _resolve_range(start: int | None, end: int | None, length: int) -> tuple[int, int]:
    """Python slice rules for [start, end) over a file of `length` bytes (negative: from the end)."""
    begin = 0 if start is None else (max(0, length + start) if start < 0 else min(start, length))
    stop = length if end is None else (length + end if end < 0 else min(end, length))
    return begin, max(begin, stop)


async def _read_ranges(aio: AsyncDFSClient, path: str, ranges: Sequence[tuple[int | None, int | None]]) -> list[bytes]:
    """Each range of one file, read through a single input stream, each with an exact-length
    positional read (in file order)."""
    out: list[bytes] = [b""] * len(ranges)
    async with await aio.open(path) as reader:
        spans = [_resolve_range(start, end, reader.length) for start, end in ranges]
        for index in sorted(range(len(spans)), key=lambda i: spans[i]):
            begin, stop = spans[index]
            out[index] = await reader.pread(begin, stop - begin)
    return out


async def _copy(aio: AsyncDFSClient, src: str, dst: str, replication: int | None, block_size: int | None) -> None:
    """Stream `src` into a new `dst` through the client; a failed copy leaves no `dst` behind."""
    async with await aio.open(src) as reader:
        writer = await aio.create(dst, overwrite=True, replication=replication, block_size=block_size)
        try:
            async for piece in reader.chunks():
                await writer.write(piece)
            await writer.close()
        except BaseException:
            await writer.abort()
            with contextlib.suppress(DfsError):
                await aio.delete(dst)
            raise


class DFSFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """fsspec file system over a NameNode: ``dfs://host:port/path``.

    Args:
        host: NameNode host (from the URL when opened by URL).
        port: NameNode HTTP port (default 9870).
        user: user to act as (default: $DFS_USER or the OS user).
        namenode: full NameNode base URL instead of host/port (e.g. for https).
        tls: reach host:port over https (default: when a CA file is given, here or by $DFS_CA_FILE).
        ca_file: PEM bundle of the CA that signs the cluster's certificates (default: $DFS_CA_FILE).
        replication: replication of files this instance creates (default: the cluster's).
        default_block_size: block size of files this instance creates (default: the cluster's).
        client_options: more keyword arguments for `DFSClient` (timeouts, transport, ...).

    Without host and namenode, the SDK default applies ($DFS_NAMENODE or http://127.0.0.1:9870).
    """

    protocol = "dfs"
    root_marker = "/"

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        namenode: str | None = None,
        replication: int | None = None,
        default_block_size: int | None = None,
        client_options: dict[str, Any] | None = None,
        tls: bool | None = None,
        ca_file: str | None = None,
        **storage_options: Any,
    ) -> None:
        super().__init__(**storage_options)
        self.ca_file = ca_file or default_ca_file()
        self.namenode = _namenode_url(namenode, host, port, self.ca_file is not None if tls is None else tls)
        self.user = user
        self.replication = replication
        self.default_block_size = default_block_size
        self._client_options = dict(client_options or {})
        self._client: DFSClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._client_pid = 0
        self._client_lock = threading.Lock()

    # --- the client ---------------------------------------------------------------------------

    @property
    def client(self) -> DFSClient:
        """The SDK client, made on first use and again in a forked child (its loop thread is gone)."""
        with self._client_lock:
            if self._client is None or self._client_pid != os.getpid():
                options = {"ca_file": self.ca_file, **self._client_options}
                self._client = DFSClient(self.namenode, user=self.user, **options)
                self._client_loop = _run(self._client, _running_loop())
                self._client_pid = os.getpid()
            return self._client

    def close(self) -> None:
        """Close the SDK client (a later call makes a new one)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None and self._client_pid == os.getpid():
            client.close()

    @property
    def fsid(self) -> str:
        return f"dfs_{self.client.info().cluster_id}"

    # --- paths --------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``dfs://host:port/a/b/`` -> ``/a/b``; plain paths are made absolute and normalised."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        if path.startswith("dfs://"):
            rest = path[len("dfs://") :]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
        elif path.startswith("dfs::"):
            path = path[len("dfs::") :]
        return "/" + re.sub("/+", "/", path).strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        """host, port and user from ``dfs://[user@]host[:port]/...``, so a URL reaches its NameNode."""
        if not path.startswith("dfs://"):
            return {}
        url = urlsplit(path)
        options: dict[str, Any] = {}
        if url.hostname:
            options["host"] = url.hostname
        if url.port:
            options["port"] = url.port
        if url.username:
            options["user"] = unquote(url.username)
        return options

    def unstrip_protocol(self, name: str) -> str:
        """A full URL naming this instance's NameNode, so dask/pyarrow can hand it on."""
        if name.startswith("dfs://"):
            return name
        return f"dfs://{urlsplit(self.namenode).netloc}{self._strip_protocol(name)}"

    # --- metadata -----------------------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[dict[str, Any]] | list[str]:
        entries = self.client.list(self._strip_protocol(path))
        if detail:
            return [_entry(status) for status in entries]
        return [status.path for status in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return _entry(self.client.status(self._strip_protocol(path)))

    def exists(self, path: str, **kwargs: Any) -> bool:
        """False only when the path is not there: connection and server errors propagate."""
        try:
            self.info(path)
        except _NOT_THERE:
            return False
        return True

    def isdir(self, path: str) -> bool:
        try:
            return bool(self.info(path)["type"] == "directory")
        except _NOT_THERE:
            return False

    def isfile(self, path: str) -> bool:
        try:
            return bool(self.info(path)["type"] == "file")
        except _NOT_THERE:
            return False

    def modified(self, path: str) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], tz=datetime.UTC)

    def created(self, path: str) -> datetime.datetime:
        """Not available: the NameNode records modification and access times only, like HDFS."""
        raise NotImplementedError("the NameNode keeps no creation time (HDFS has none); use modified()")

    def du(
        self, path: str, total: bool = True, maxdepth: int | None = None, withdirs: bool = False, **kwargs: Any
    ) -> int | dict[str, int]:
        """A total is one NameNode call (content summary); per-path sizes walk the tree."""
        if total and maxdepth is None:
            return self.client.content_summary(self._strip_protocol(path)).length
        result: int | dict[str, int] = super().du(path, total=total, maxdepth=maxdepth, withdirs=withdirs, **kwargs)
        return result

    # --- namespace changes --------------------------------------------------------------------

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create one directory; FileExistsError if the path exists (as fsspec's local file system)."""
        path = self._strip_protocol(path)
        mode = int(kwargs.get("mode", 0o755))
        try:
            self.client.mkdirs(path, mode, parents=False)
        except FileNotFoundError:
            if not create_parents:
                raise
            self.client.mkdirs(posixpath.dirname(path), mode, parents=True)
            self.client.mkdirs(path, mode, parents=False)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        if exist_ok:
            self.client.mkdirs(self._strip_protocol(path), parents=True)
        else:
            self.mkdir(path, create_parents=True)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory (OSError ENOTEMPTY otherwise)."""
        path = self._strip_protocol(path)
        if not self.client.status(path).is_dir:
            raise DfsNotADirectoryError(f"{path} is not a directory", path=path)
        self.client.delete(path, recursive=False)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.client.status(path).is_dir:
            raise DfsIsADirectoryError(f"{path} is a directory", path=path)
        self.client.delete(path, recursive=False)

    def rm(self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files and directories, each subtree in one NameNode call.

        Without `recursive`, a non-empty directory raises OSError(ENOTEMPTY) and an empty one
        is removed. With `maxdepth`, fsspec's file-by-file walk applies.
        """
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        targets = self.expand_path(path) if isinstance(path, list) or _has_magic(path) else [path]
        done: list[str] = []
        for target in sorted(self._strip_protocol(t) for t in targets):
            if recursive and any(target.startswith(parent.rstrip("/") + "/") for parent in done):
                continue  # gone with an ancestor
            self.client.delete(target, recursive=recursive)
            done.append(target)

    def mv(
        self, path1: str | list[str], path2: str, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any
    ) -> None:
        """Rename on the NameNode (directories whole, whatever `recursive` says). Into `path2`
        when it is a directory or ends with '/'; an existing file there is replaced."""
        if isinstance(path1, list) or _has_magic(path1):
            sources = [self._strip_protocol(p) for p in self.expand_path(path1)]
            self.makedirs(path2, exist_ok=True)
            into = True
        else:
            sources = [self._strip_protocol(path1)]
            into = str(path2).endswith("/") or self.isdir(path2)
        target = self._strip_protocol(path2)
        for source in sources:
            destination = posixpath.join(target, posixpath.basename(source)) if into else target
            if destination != source:
                self.client.rename(source, destination, overwrite=True)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file by streaming it through this client (a directory source is made at `path2`)."""
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.client.status(src).is_dir:
            self.makedirs(dst, exist_ok=True)
            return
        replication = kwargs.get("replication", self.replication)
        block_size = kwargs.get("dfs_block_size", self.default_block_size)
        _run(self.client, _copy(self.client.aio, src, dst, replication, block_size))

    # --- data ---------------------------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> DFSFile:
        return DFSFile(self, path, mode, block_size, autocommit, cache_options=cache_options, **kwargs)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """Bytes [start, end) (slice rules), read from the DataNodes holding that range only."""
        return _run(self.client, _read_ranges(self.client.aio, self._strip_protocol(path), [(start, end)]))[0]

    def cat_ranges(
        self,
        paths: list[str],
        starts: int | list[int | None] | None,
        ends: int | list[int | None] | None,
        max_gap: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[bytes | Exception]:
        """Ranges of several files; each file is opened once for all its ranges."""
        if max_gap is not None:
            raise NotImplementedError("max_gap is not supported: ranges are read exactly")
        count = len(paths)
        start_list = starts if isinstance(starts, list) else [starts] * count
        end_list = ends if isinstance(ends, list) else [ends] * count
        if len(start_list) != count or len(end_list) != count:
            raise ValueError("paths, starts and ends must have the same length")
        by_file: dict[str, list[int]] = {}
        for index, path in enumerate(paths):
            by_file.setdefault(self._strip_protocol(path), []).append(index)
        out: list[bytes | Exception] = [b""] * count
        for path, indexes in by_file.items():
            ranges = [(start_list[i], end_list[i]) for i in indexes]
            try:
                pieces: Sequence[bytes | Exception] = _run(self.client, _read_ranges(self.client.aio, path, ranges))
            except Exception as exc:
                if on_error != "return":
                    raise
                pieces = [exc] * len(indexes)
            for index, piece in zip(indexes, pieces, strict=True):
                out[index] = piece
        return out

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """`mode="create"` fails atomically on the NameNode if the file exists."""
        with self.open(path, "xb" if mode == "create" else "wb", **kwargs) as handle:
            handle.write(value)


class DFSFile(AbstractBufferedFile):  # type: ignore[misc]
    """A file of `DFSFileSystem`: "rb" over one SDK input stream, "wb"/"xb"/"ab" into an output stream.

    Reads default to fsspec's "none" cache: the input stream already keeps the DataNode packet
    in hand and reads sequential ranges through one connection, so an fsspec read-ahead cache
    would only fetch bytes nobody asked for. Pass ``cache_type=`` to choose another.

    Extra keyword arguments when writing: ``replication`` and ``dfs_block_size`` (bytes) of the
    new file; fsspec's ``block_size`` stays the buffer size, as everywhere in fsspec.
    """

    DEFAULT_BLOCK_SIZE = FILE_BUFFER

    def __init__(
        self,
        fs: DFSFileSystem,
        path: str,
        mode: str = "rb",
        block_size: int | str | None = "default",
        autocommit: bool = True,
        cache_type: str = "none",
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if mode not in ("rb", "wb", "xb", "ab"):
            raise NotImplementedError(f"mode {mode!r} is not supported (use rb, wb, xb or ab)")
        self._client = fs.client
        self._loop = fs._client_loop
        self._lock = threading.Lock()
        self._reader: DfsInputStream | None = None
        self._writer: DfsOutputStream | None = None
        replication = kwargs.pop("replication", fs.replication)
        dfs_block_size = kwargs.pop("dfs_block_size", fs.default_block_size)
        if mode == "rb":
            self._reader = _run(self._client, self._client.aio.open(path))
            kwargs.setdefault("size", self._reader.length)
        try:
            super().__init__(fs, path, mode, block_size, autocommit, cache_type, cache_options, **kwargs)
            if mode == "rb":
                # fsspec's cache holds the bound method: a cycle that only the garbage collector
                # breaks, keeping a DataNode connection open until then (pyarrow never closes files).
                self.cache.fetcher = _weak_fetcher(self)
        except BaseException:
            if self._reader is not None:
                _run(self._client, self._reader.close())
            raise
        if mode != "rb":
            # Open now: the NameNode decides at once (file exists, path is a directory, no parent).
            self._target = self._temporary_name() if not autocommit else path
            try:
                self._writer = self._open_writer(mode, replication, dfs_block_size)
            except BaseException:
                self.closed = True  # nothing to flush or complete, not even on garbage collection
                raise
            self.offset = 0  # the upload is initiated: flush() goes straight to _upload_chunk

    # --- reading ------------------------------------------------------------------------------

    def _fetch_range(self, start: int, end: int) -> bytes:
        with self._lock:
            if self._reader is None:
                raise ValueError("I/O operation on closed file")
            return _run(self._client, self._reader.pread(start, max(0, end - start)))

    # --- writing ------------------------------------------------------------------------------

    def _temporary_name(self) -> str:
        """Where a file written inside a transaction waits for commit()."""
        if self.mode == "ab":
            raise NotImplementedError("append inside an fsspec transaction is not supported")
        parent, name = posixpath.split(self.path)
        return posixpath.join(parent, f".{name}.dfs-tmp-{uuid.uuid4().hex[:12]}")

    def _open_writer(self, mode: str, replication: int | None, block_size: int | None) -> DfsOutputStream:
        aio = self._client.aio
        if mode == "ab":
            with contextlib.suppress(FileNotFoundError):  # appending to nothing creates the file
                return _run(self._client, aio.append(self._target))
        elif mode == "xb" and self._target != self.path and self.fs.exists(self.path):
            raise FileExistsError(f"{self.path} already exists")
        overwrite = mode == "wb"
        coroutine = aio.create(self._target, overwrite=overwrite, replication=replication, block_size=block_size)
        return _run(self._client, coroutine)

    def _initiate_upload(self) -> None:
        """Nothing to do: the output stream was opened with the file."""

    def _upload_chunk(self, final: bool = False) -> bool:
        """Forward the buffered bytes to the output stream; the final call completes the file."""
        writer = self._writer
        if writer is None:
            raise ValueError("I/O operation on closed file")
        try:
            data = self.buffer.getbuffer()
            if len(data):
                _run(self._client, writer.write(data))
            del data  # release the export so the buffer can be replaced
            if final:
                self._writer = None
                _run(self._client, writer.close())
        except BaseException:
            self._abort_writer(writer)
            raise
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        """Publish a file written inside a transaction (a rename on the NameNode)."""
        if self._target != self.path:
            self._client.rename(self._target, self.path, overwrite=self.mode != "xb")
            self._target = self.path

    def discard(self) -> None:
        """Abort the write and remove what was written (an appended-to file keeps its old data
        plus any whole blocks already written: the NameNode recovers it)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._abort_writer(writer)
        if self.mode in ("wb", "xb"):
            with contextlib.suppress(FileNotFoundError):
                self._client.delete(self._target)
        self.closed = True

    def _abort_writer(self, writer: DfsOutputStream) -> None:
        self._writer = None
        with contextlib.suppress(DfsError):  # else the lease runs out and the NameNode recovers the file
            _run(self._client, writer.abort())

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            reader, self._reader = self._reader, None
            if reader is not None:
                closing = reader.close()
                try:
                    _run(self._client, closing)
                except RuntimeError:  # the client is closed, and its connections with it
                    closing.close()
                except (asyncio.CancelledError, DfsError) as exc:
                    # pyarrow lets go of files from its own threads, racing a closing client:
                    # the stream is gone either way, and a close must not fail for it.
                    log.debug("closing %s: %r", self.path, exc)

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is not None and self.writable():
            self.discard()
        else:
            self.close()

    def __del__(self) -> None:
        if self.closed or not _on_loop(self._loop):
            super().__del__()  # closes the file (completing a write), as for any Python file
            return
        # Collected on the client's own I/O thread, which must not block: let go of the stream
        # there (an unclosed writer is aborted, not completed).
        self.closed = True
        reader, writer, self._reader, self._writer = self._reader, self._writer, None, None
        for cleanup in (reader.close() if reader else None, writer.abort() if writer else None):
            if cleanup is not None:
                task = asyncio.ensure_future(cleanup)
                _cleanups.add(task)
                task.add_done_callback(_cleanups.discard)


def _weak_fetcher(file: DFSFile) -> Callable[[int, int], bytes]:
    ref = weakref.ref(file)

    def fetch(start: int, end: int) -> bytes:
        target = ref()
        if target is None:
            raise ValueError("I/O operation on closed file")
        return target._fetch_range(start, end)

    return fetch


def _namenode_url(namenode: str | None, host: str | None, port: int | None, tls: bool) -> str:
    """The base URL: `namenode` as given, else host:port over http or (with `tls`) https."""
    if namenode:
        return namenode.rstrip("/")
    if host:
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        return f"{'https' if tls else 'http'}://{host}:{port or DEFAULT_PORT}"
    return default_namenode()


def _has_magic(path: str) -> bool:
    return bool(re.search(r"[*?\[]", str(path)))
