"""Writes through the mount: stream them into blocks when HDFS can take them, spool them when not.

HDFS-style files only grow at the end, so each open file is in one of three states:

* **clean**: nothing written since the last sync; reads go to the DataNodes.
* **streaming**: writes arrive at the end of the file and go straight into a write
  pipeline (`create`, or `append` for an existing file), a packet at a time, never the
  whole file. A write past the end fills the hole with zeros through the same stream.
* **spooled**: a write landed inside the existing bytes (an overwrite, `dd conv=notrunc`)
  or a truncate needs one. The file is copied into a local temporary file, every later
  read and write of it is served there, and a sync uploads the whole file under a
  temporary name and renames it over the original in one atomic step: readers see the
  old bytes or the new ones, never a mix, and a failed upload leaves the old file.

A sync (close(2)'s flush, fsync(2)) makes everything written durable before it returns,
replicated on the DataNodes and completed on the NameNode; its error is the program's
error. A streaming file is completed and the next write reopens it with `append`, so
every fsync ends a block early (the cost of durability in a store whose replicas are
written once).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from client import DFSClient, FileStatus
from client.file_writer import DfsOutputStream
from client.protocol import paths
from client.protocol.errors import DfsError, DfsFileNotFoundError

log = logging.getLogger(__name__)

#: Holes and extensions are filled with zeros in pieces this big.
ZERO_PIECE = 1024 * 1024
_ZEROS = bytes(ZERO_PIECE)


class Spool:
    """A local, already-unlinked copy of a file being rewritten (vanishes with the process)."""

    def __init__(self, directory: Path | None) -> None:
        self.file: BinaryIO = tempfile.TemporaryFile(dir=directory, prefix="dfs-spool-")  # noqa: SIM115
        self.fd = self.file.fileno()
        self.dirty = False

    @property
    def length(self) -> int:
        return os.fstat(self.fd).st_size

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def pwrite(self, data: bytes, offset: int) -> int:
        written = os.pwrite(self.fd, data, offset)
        self.dirty = True
        return written

    def truncate(self, length: int) -> None:
        os.ftruncate(self.fd, length)
        self.dirty = True

    def close(self) -> None:
        self.file.close()


class OpenFile:
    """What the mount holds for one file while any handle has it open; shared by its handles."""

    def __init__(self, fs: DFSClient, path: str, status: FileStatus, spool_dir: Path | None) -> None:
        self.fs = fs
        self.path = path
        self.status = status
        self.spool_dir = spool_dir
        self.lock = threading.RLock()
        self.handles = 0
        self.length = status.length  # as this mount sees it, unsynced bytes included
        self.mtime_ms: int | None = None  # set by local writes, until they are synced
        self.version = 0  # bumped whenever the bytes in the cluster change under a reader
        self.deleted = False
        self._writer: DfsOutputStream | None = None
        self._spool: Spool | None = None
        self._failure: OSError | None = None

    @property
    def spooled(self) -> bool:
        """Held in a local spool: its sync replaces the file by a rename in its directory."""
        return self._spool is not None

    @property
    def dirty(self) -> bool:
        """Written to, and not yet synced."""
        return self._writer is not None or (self._spool is not None and self._spool.dirty)

    # --- entry points (callers hold no lock; each takes the file's) ----------------------------

    def adopt_writer(self, stream: DfsOutputStream) -> None:
        """A file this mount just created: its writer is already open on the NameNode."""
        with self.lock:
            self._writer = stream
            self.length = 0
            self._touch()

    def write(self, data: bytes, offset: int) -> int:
        with self.lock:
            self._check_usable()
            if self._spool is None and offset >= self.length:
                return self._stream_write(data, offset)
            spool = self._ensure_spool()
            written = spool.pwrite(data, offset)
            self.length = max(self.length, offset + written)
            self._touch()
            return written

    def read_local(self, size: int, offset: int) -> bytes | None:
        """Bytes from the spool if the file is spooled; None means: read from the DataNodes.

        A streaming file is synced first, so a program reads back what it wrote."""
        with self.lock:
            self._check_usable()
            if self._spool is not None:
                return self._spool.pread(size, offset)
            if self._writer is not None:
                self.sync()
            return None

    def truncate(self, length: int) -> None:
        """Cut or extend the file to `length` bytes (extended with zeros)."""
        with self.lock:
            self._check_usable()
            if self._spool is not None:
                self._spool.truncate(length)
                self.length = length
            elif length == self.length:
                pass
            elif length > self.length:
                self._stream_write(b"", length)  # zero-fills the hole through the writer
            else:
                self._sync_writer()
                # The NameNode drops whole blocks and has the DataNodes cut the last one in place.
                self.fs.truncate(self.path, length, wait=True)
                self.length = length
                self.version += 1
            self._touch()

    def sync(self) -> None:
        """Make every byte written so far durable (flush, fsync); raise the first failure
        since the last sync (a failed write may have lost bytes earlier writes took)."""
        with self.lock:
            try:
                self._sync_writer()
                if self._spool is not None and self._spool.dirty:
                    self._upload_spool()
            finally:
                failure, self._failure = self._failure, None
            if failure is not None:
                raise failure

    def release(self) -> None:
        """The last handle closed: sync what is left (errors were reported at flush) and free the spool."""
        with self.lock:
            try:
                if not self.deleted:
                    self.sync()
            except OSError as exc:
                log.error("could not sync %s when it was closed: %s", self.path, exc)
            finally:
                if self._writer is not None:  # its sync failed: the NameNode gets the file back
                    self._recover(self._writer)
                    self._writer = None
                if self._spool is not None:
                    self._spool.close()
                    self._spool = None

    def discard(self) -> None:
        """The file was deleted: stop writing it, keep nothing."""
        with self.lock:
            self.deleted = True
            writer, self._writer = self._writer, None
            if writer is not None:
                with contextlib.suppress(DfsError):
                    self.fs.run(writer.abort())
            if self._spool is not None:
                self._spool.close()
                self._spool = None

    # --- streaming -----------------------------------------------------------------------------

    def _stream_write(self, data: bytes, offset: int) -> int:
        writer = self._writer or self._open_append()
        try:
            hole = offset - self.length
            while hole > 0:
                piece = _ZEROS[: min(hole, ZERO_PIECE)]
                self.fs.run(writer.write(piece))
                hole -= len(piece)
                self.length += len(piece)
            if data:
                self.fs.run(writer.write(data))
                self.length += len(data)
        except BaseException as exc:
            self._fail(exc)
            raise
        self._touch()
        return len(data)

    def _open_append(self) -> DfsOutputStream:
        self._writer = self.fs.run(self.fs.aio.append(self.path))
        return self._writer

    def _sync_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            self.status = self.fs.run(writer.close())
        except BaseException:
            self._recover(writer)
            raise
        self.length = self.status.length
        self.mtime_ms = None
        self.version += 1

    def _fail(self, exc: BaseException) -> None:
        """A write failed: bytes earlier write() calls took may be gone with the writer, so the
        next flush reports the failure too; then the file starts clean from what the cluster holds."""
        writer, self._writer = self._writer, None
        self._recover(writer)
        self._failure = exc if isinstance(exc, OSError) else OSError(errno.EIO, f"write to {self.path} failed: {exc}")

    def _recover(self, writer: DfsOutputStream | None) -> None:
        """Hand a failed writer's file back to the NameNode (it keeps the finished blocks)."""
        if writer is not None:
            with contextlib.suppress(DfsError):
                self.fs.run(writer.abort())
        with contextlib.suppress(DfsError):
            self.status = self.fs.status(self.path)
            self.length = self.status.length
        self.mtime_ms = None
        self.version += 1

    # --- spooling ------------------------------------------------------------------------------

    def _ensure_spool(self) -> Spool:
        if self._spool is not None:
            return self._spool
        self._sync_writer()
        spool = Spool(self.spool_dir)
        try:
            if self.length > 0:
                self.fs.get(self.path, spool.file)
                spool.file.flush()
        except BaseException:
            spool.close()
            raise
        self._spool = spool
        log.info("spooling %s locally for a write inside its %d bytes", self.path, self.length)
        return spool

    def _upload_spool(self) -> None:
        """Write the spool as a new file beside the original, then rename it over the original."""
        assert self._spool is not None
        spool, status = self._spool, self.status
        temporary = paths.join(
            paths.parent(self.path), f".{paths.basename(self.path)[:200]}.dfs-{uuid.uuid4().hex[:8]}"
        )
        spool.file.seek(0)
        uploaded = self.fs.put(spool.file, temporary, replication=status.replication, block_size=status.block_size)
        try:
            if uploaded.mode != status.mode:
                self.fs.set_permission(temporary, status.mode)
            if (uploaded.owner, uploaded.group) != (status.owner, status.group):
                self.fs.set_owner(temporary, status.owner, status.group)
            self.fs.set_times(temporary, mtime=self.mtime_ms or _now_ms())
            self.status = self.fs.rename(temporary, self.path, overwrite=True)
        except BaseException:
            with contextlib.suppress(DfsError):
                self.fs.delete(temporary)
            raise
        spool.dirty = False
        self.mtime_ms = None
        self.version += 1

    # --- helpers -------------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.deleted:
            raise DfsFileNotFoundError(f"{self.path} was deleted while open", path=self.path)

    def _touch(self) -> None:
        self.mtime_ms = _now_ms()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
