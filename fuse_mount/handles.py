"""The open-file table: FUSE file handles -> (shared OpenFile, own reader), and path -> OpenFile.

Every handle of one file shares one `OpenFile` (its write state: two descriptors of one
file see each other's writes, as on a local disk) but has its own reader, so concurrent
readers each stream from the DataNodes without disturbing one another. Renames move
open files to their new paths; the table is the only place that knows both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client import DFSClient, FileStatus
from client.protocol.errors import DfsError
from fuse_mount.reading import HandleReader
from fuse_mount.writing import OpenFile


@dataclass
class Handle:
    file: OpenFile
    reader: HandleReader
    writable: bool
    #: Who opened it (client.identity): its reads and writes act as them, wherever they come from.
    user: str | None = None
    released: bool = field(default=False)


class HandleTable:
    """Thread-safe table of open files and handles."""

    def __init__(self, fs: DFSClient, spool_dir: Path | None) -> None:
        self.fs = fs
        self.spool_dir = spool_dir
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._files: dict[str, OpenFile] = {}
        self._numbers = itertools.count(1)

    def open(self, path: str, status: FileStatus, *, writable: bool, user: str | None = None) -> tuple[int, Handle]:
        with self._lock:
            file = self._files.get(path)
            if file is None:
                file = self._files[path] = OpenFile(self.fs, path, status, self.spool_dir)
            file.handles += 1
            handle = Handle(file, HandleReader(self.fs), writable, user)
            number = next(self._numbers)
            self._handles[number] = handle
            return number, handle

    def get(self, number: int) -> Handle:
        with self._lock:
            handle = self._handles.get(number)
        if handle is None:
            raise OSError(9, f"no open file handle {number}")  # EBADF
        return handle

    def file(self, path: str) -> OpenFile | None:
        """The open file at `path`, if any handle has it open."""
        with self._lock:
            return self._files.get(path)

    def files_under(self, path: str) -> list[OpenFile]:
        """Open files at `path` or below it."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            return [file for key, file in self._files.items() if key == path or key.startswith(prefix)]

    def release(self, number: int) -> OpenFile | None:
        """Drop a handle; returns its file if that was the file's last handle (the caller releases it)."""
        with self._lock:
            handle = self._handles.pop(number, None)
            if handle is None:
                return None
            handle.file.handles -= 1
            last = handle.file.handles == 0
            if last and self._files.get(handle.file.path) is handle.file:
                del self._files[handle.file.path]
        handle.reader.close()
        return handle.file if last else None

    def moved(self, src: str, dst: str) -> None:
        """A rename happened: open files at or under `src` now live under `dst`."""
        prefix = src.rstrip("/") + "/"
        with self._lock:
            for key in [key for key in self._files if key == src or key.startswith(prefix)]:
                file = self._files.pop(key)
                file.path = dst + key[len(src) :]
                file.version += 1  # readers reopen by the new name
                self._files[file.path] = file

    def forget(self, path: str, *, subtree: bool = False) -> list[OpenFile]:
        """Detach the open files at `path` (and below) from their names: they were deleted."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            keys = [key for key in self._files if key == path or (subtree and key.startswith(prefix))]
            return [self._files.pop(key) for key in keys]

    def drain(self, on_error: Callable[[OpenFile, DfsError | OSError], None]) -> None:
        """Release every open file (unmount): what was written becomes durable."""
        with self._lock:
            files = list(self._files.values())
            self._files.clear()
            self._handles.clear()
        for file in files:
            try:
                file.sync()
            except OSError as exc:
                on_error(file, exc)
            file.release()
