"""Reading a file: stream verified bytes straight from DataNodes, failing over between replicas.

A reader keeps one open stream on one replica of the block under its position and
serves reads from the packet in hand, so sequential reads cost one request per block.
A seek outside the bytes in hand reopens the stream at the new position. On a dead
node, a timeout or a checksum mismatch it moves on to the next replica at the same
position (reporting a corrupt replica to the NameNode); only when every replica of a
block has failed does a read raise BlockMissingError. A DataNode answering 503 BUSY (at its
transfer limit) has not failed: the reader tries the other replicas first, then asks the busy
ones again after a jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator

import httpx

from client.backoff import RetryBudget
from client.block_io import read_block
from client.namenode_rpc import NameNodeRPC
from client.protocol.client_namenode import BadReplica, LocatedBlock, LocatedBlocks, ReportBadBlocksRequest
from client.protocol.common import DatanodeRef
from client.protocol.errors import (
    BlockMissingError,
    ChecksumMismatchError,
    DfsError,
    InvalidArgumentError,
    InvalidBlockTokenError,
    ServerBusyError,
)
from client.request_id import current_request_id, new_request_id, stream_operation

# A library logs through stdlib logging: silent unless the application configures it.
log = logging.getLogger(__name__)

#: How long a read waits for busy DataNodes (every replica answering 503 BUSY) without a byte read.
BUSY_DEADLINE_S = 60.0
#: Forward seeks shorter than this read through the open stream instead of reopening it.
SKIP_THRESHOLD = 1024 * 1024
#: Fresh block tokens a stream fetches before a refusal is final (a refusal after a refresh is no expiry).
MAX_TOKEN_REFRESHES = 3
#: How far ahead of a read to fetch block locations in one NameNode call (opening a file with
#: thousands of small blocks must not load them all).
LOCATION_PREFETCH = 256 * 1024 * 1024


class DfsInputStream:
    """An open file being read (async); seekable."""

    def __init__(self, rpc: NameNodeRPC, http: httpx.AsyncClient, path: str, located: LocatedBlocks) -> None:
        self.rpc = rpc
        self.http = http
        self.path = path
        self.length = located.file_length
        self._blocks: list[LocatedBlock] = list(located.blocks)
        self._position = 0
        self._buffer = memoryview(b"")
        self._stream: AsyncIterator[memoryview] | None = None
        self._stream_position = 0  # file offset of the next byte the open stream yields
        self._stream_block: LocatedBlock | None = None
        self._stream_node: DatanodeRef | None = None
        self._bad: dict[int, set[str]] = {}
        self._token_refusals = 0
        #: Replicas that answered 503 BUSY since the last byte read, by block id.
        self._busy: dict[int, set[str]] = {}
        self._busy_budget: RetryBudget | None = None
        self._last_busy: ServerBusyError | None = None
        self._range_end: int | None = None  # while set, new streams stop here (pread)
        self.closed = False
        #: Every later read (block streams, location refreshes, bad-replica reports) carries
        #: the id of the open.
        self.request_id = current_request_id() or new_request_id()

    async def __aenter__(self) -> DfsInputStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- public API ------------------------------------------------------------------------

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (cheap: the stream is only reopened by the next read if needed)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.length}[whence]
        target = base + offset
        if target < 0:
            raise InvalidArgumentError(f"negative seek position {target}", path=self.path)
        delta = target - self._position
        if 0 <= delta < len(self._buffer):
            self._buffer = self._buffer[delta:]
        else:
            self._buffer = memoryview(b"")
        self._position = target
        return target

    @stream_operation
    async def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all the rest if negative); b'' at end of file."""
        if size is None or size < 0:
            size = max(0, self.length - self._position)
        chunks = []
        remaining = size
        while remaining > 0:
            piece = await self.read_some(remaining)
            if not piece:
                break
            chunks.append(piece)
            remaining -= len(piece)
        return b"".join(chunks)

    def bound(self, end: int | None) -> None:
        """Ask DataNodes for nothing at or past file offset `end` (None: to the end of each block)
        when a stream is next opened: for a reader that knows where it will stop."""
        self._range_end = end

    @stream_operation
    async def pread(self, offset: int, size: int) -> bytes:
        """The bytes at [offset, offset + size) (fewer at end of file). A jump asks DataNodes for
        exactly those bytes: for random access (parquet footers, column chunks), where a stream
        to the end of the block would fetch bytes nobody reads; a read at the current position
        streams on. Moves the position to the end."""
        if offset == self._position:
            # A read that continues where the last one ended is a sequential scan: keep
            # streaming to the block's end instead of one bounded request per read.
            return await self.read(size)
        self.seek(offset)
        self.bound(offset + max(0, size))
        try:
            return await self.read(size)
        finally:
            self.bound(None)

    @stream_operation
    async def read_some(self, size: int) -> memoryview:
        """At most `size` bytes, whatever is at hand (at least one byte unless at end of file)."""
        self._check_open()
        if self._position >= self.length or size <= 0:
            return memoryview(b"")
        if not self._buffer:
            await self._fill()
        piece = self._buffer[:size]
        self._buffer = self._buffer[len(piece) :]
        self._position += len(piece)
        return piece

    async def chunks(self) -> AsyncIterator[memoryview]:
        """Every remaining byte, in the pieces the DataNodes send (for copying out)."""
        while piece := await self.read_some(1 << 30):
            yield piece

    @stream_operation
    async def close(self) -> None:
        self.closed = True
        await self._close_stream()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    # --- streams ---------------------------------------------------------------------------

    async def _fill(self) -> None:
        """Put the bytes at the current position into the buffer, opening or switching streams."""
        while True:
            ahead = self._position - self._stream_position
            if self._stream is None or not 0 <= ahead < SKIP_THRESHOLD:
                await self._open_stream()
            assert self._stream is not None
            try:
                piece = await anext(self._stream)
            except StopAsyncIteration:
                await self._close_stream()  # end of this block: the next pass opens the next one
                continue
            except InvalidBlockTokenError as exc:
                await self._token_refused(exc)
                continue
            except ServerBusyError as exc:
                await self._replica_busy(exc)
                continue
            except DfsError as exc:
                await self._replica_failed(exc)
                continue
            self._busy_budget = None  # bytes arrived: a later busy node gets a fresh deadline
            start = self._stream_position
            self._stream_position += len(piece)
            skip = self._position - start
            if skip < len(piece):
                self._buffer = piece[skip:]
                return

    async def _open_stream(self) -> None:
        await self._close_stream()
        block = await self._block_at(self._position)
        bad = self._bad.setdefault(block.block.block_id, set())
        busy = self._busy.setdefault(block.block.block_id, set())
        candidates = [node for node in block.locations if node.id not in bad and node.id not in busy]
        if not candidates and busy:
            await self._wait_for_busy(block)  # every usable replica is busy: back off, then ask them again
            busy.clear()
            candidates = [node for node in block.locations if node.id not in bad]
        if not candidates:
            block = await self._refresh_block(block)
            candidates = [node for node in block.locations if node.id not in bad]
            if not candidates:
                raise BlockMissingError(
                    f"could not read block {block.block.block_id} of {self.path} from any of "
                    f"{len(block.locations)} replicas (failed: {sorted(bad)})",
                    path=self.path,
                )
        node = candidates[0]
        offset_in_block = self._position - block.offset
        wanted = block.length - offset_in_block
        if self._range_end is not None:
            wanted = min(wanted, max(1, self._range_end - self._position))
        self._stream = read_block(self.http, node, block.block, offset_in_block, wanted, block.token)
        self._stream_block = block
        self._stream_node = node
        self._stream_position = self._position

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    async def _token_refused(self, error: InvalidBlockTokenError) -> None:
        """The DataNode refused our block token (it expired while the file was open, most likely):
        fetch fresh locations, which carry new tokens, and read on; give up after a few tries."""
        block = self._stream_block
        assert block is not None
        await self._close_stream()
        self._token_refusals += 1
        if self._token_refusals > MAX_TOKEN_REFRESHES:
            raise error
        log.info("block token refused, fetching a fresh one: path=%s error=%s", self.path, error)
        await self._refresh_block(block)

    async def _replica_busy(self, error: ServerBusyError) -> None:
        """The DataNode is at its transfer limit: not a bad replica, so try the others first and
        come back to it after a backoff (`_wait_for_busy`)."""
        block, node = self._stream_block, self._stream_node
        assert block is not None and node is not None
        await self._close_stream()
        self._busy.setdefault(block.block.block_id, set()).add(node.id)
        self._last_busy = error
        log.info("datanode busy, trying another replica: path=%s datanode=%s", self.path, node.url)

    async def _wait_for_busy(self, block: LocatedBlock) -> None:
        """Sleep a jittered backoff before asking busy replicas again; raise the busy error once
        BUSY_DEADLINE_S have passed without a byte read."""
        if self._busy_budget is None:
            self._busy_budget = RetryBudget(BUSY_DEADLINE_S)
        hint = self._last_busy.retry_after_s if self._last_busy is not None else None
        if not await self._busy_budget.wait(hint):
            raise ServerBusyError(
                f"every replica of block {block.block.block_id} of {self.path} stayed busy for "
                f"{BUSY_DEADLINE_S:g}s: {self._last_busy}",
                path=self.path,
            )

    async def _replica_failed(self, error: DfsError) -> None:
        block, node = self._stream_block, self._stream_node
        assert block is not None and node is not None
        self._bad.setdefault(block.block.block_id, set()).add(node.id)
        log.warning(
            "replica read failed, trying another: path=%s block=%s datanode=%s error=%s",
            self.path,
            block.block.block_id,
            node.url,
            error,
        )
        if isinstance(error, ChecksumMismatchError):
            report = ReportBadBlocksRequest(
                replicas=[BadReplica(block=block.block, datanode_id=node.id, reason=error.message)]
            )
            with contextlib.suppress(DfsError):
                await self.rpc.report_bad_blocks(report)
        await self._close_stream()

    # --- block locations -------------------------------------------------------------------

    async def _block_at(self, position: int) -> LocatedBlock:
        for block in self._blocks:
            if block.offset <= position < block.offset + block.length:
                return block
        located = await self.rpc.locations(self.path, position, LOCATION_PREFETCH)
        self.length = located.file_length
        self._blocks = list(located.blocks)
        for block in self._blocks:
            if block.offset <= position < block.offset + block.length:
                return block
        raise BlockMissingError(f"no block of {self.path} covers offset {position}", path=self.path)

    async def _refresh_block(self, block: LocatedBlock) -> LocatedBlock:
        """Ask the NameNode again: replicas may have moved since the file was opened."""
        await asyncio.sleep(0.1)
        located = await self.rpc.locations(self.path, block.offset, block.length)
        for fresh in located.blocks:
            if fresh.block.block_id == block.block.block_id:
                self._blocks = [fresh if b.block.block_id == fresh.block.block_id else b for b in self._blocks]
                return fresh
        return block
