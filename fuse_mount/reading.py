"""Reads through the mount: one verified stream per open handle, plus a short look-back window.

The kernel turns a program's sequential reads into readahead requests that a
multithreaded FUSE loop may hand us slightly out of order. Each handle keeps one
`DfsInputStream` (one DataNode stream per block, checksums verified, replicas failed
over) and the last few MiB it returned: a request that overtook its predecessor is
read through from the stream, the bytes it skipped are kept, and the late predecessor
is answered from the window instead of reopening a stream. A real jump (random access:
`tail -c`, a parquet footer) asks the DataNodes for exactly the bytes wanted.
"""

from __future__ import annotations

import collections
import threading

from client import DFSClient
from client.file_reader import DfsInputStream

#: Bytes kept after they were returned, for requests that arrive late (the kernel keeps several
#: MiB of readahead in flight, and a multithreaded loop serves them in any order).
WINDOW_BYTES = 32 * 1024 * 1024
#: A request this far ahead of the stream reads through; further is a jump.
READ_THROUGH = 16 * 1024 * 1024


class ReadWindow:
    """The most recent contiguous-or-not pieces read, newest last, at most `capacity` bytes."""

    def __init__(self, capacity: int = WINDOW_BYTES) -> None:
        self.capacity = capacity
        self._pieces: collections.deque[tuple[int, bytes]] = collections.deque()
        self._size = 0

    def add(self, offset: int, data: bytes) -> None:
        if not data:
            return
        self._pieces.append((offset, data))
        self._size += len(data)
        while self._size > self.capacity and len(self._pieces) > 1:
            _, dropped = self._pieces.popleft()
            self._size -= len(dropped)

    def get(self, offset: int, size: int, length: int) -> bytes | None:
        """The bytes at [offset, offset + size) clipped to the file `length`, if held."""
        end = min(offset + size, length)
        if end <= offset:
            return b""
        parts: list[bytes] = []
        position = offset
        # Pieces are few (a window holds a handful); find one covering `position`, repeatedly.
        while position < end:
            for start, data in self._pieces:
                if start <= position < start + len(data):
                    take = data[position - start : end - start]
                    parts.append(take)
                    position += len(take)
                    break
            else:
                return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def clear(self) -> None:
        self._pieces.clear()
        self._size = 0


class HandleReader:
    """The read side of one open handle. Thread-safe: the kernel may send concurrent reads."""

    def __init__(self, fs: DFSClient) -> None:
        self.fs = fs
        self._lock = threading.Lock()
        self._stream: DfsInputStream | None = None
        self._window = ReadWindow()
        self._version = -1
        self._path = ""

    def read(self, path: str, size: int, offset: int, version: int) -> bytes:
        """Up to `size` bytes at `offset` of the file at `path` whose content is at `version`."""
        with self._lock:
            if version != self._version or path != self._path:
                self._reset()
                self._version, self._path = version, path
            stream = self._stream
            if stream is None:
                stream = self._stream = self.fs.run(self.fs.aio.open(path, offset))
            held = self._window.get(offset, size, stream.length)
            if held is not None:
                return held
            position = stream.tell()
            if position <= offset <= position + READ_THROUGH:
                data = self.fs.run(stream.read(offset + size - position))
                self._window.add(position, data)
                return data if offset == position else data[offset - position :]
            data = self.fs.run(stream.pread(offset, size))
            self._window.add(offset, data)
            return data

    def start(self, path: str, version: int) -> None:
        """Open the stream now (at open(2)), not at the first read: the NameNode decides then
        whether the caller may read, even when the kernel would serve cached pages."""
        with self._lock:
            self._reset()
            self._stream = self.fs.run(self.fs.aio.open(path))
            self._version, self._path = version, path

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._window.clear()
        stream, self._stream = self._stream, None
        if stream is not None:
            self.fs.run(stream.close())
