"""Writing a file: cut it into blocks, stream each block through a DataNode pipeline in segments.

Bytes are checksummed into packets as they arrive and grouped into *segments* (8 MiB
by default). One segment is in flight while the next fills, so at most two segments
are ever held: never a whole block. A segment is acknowledged only when every node of
the pipeline has it; the last segment of a block is acknowledged only when every node
has fsynced and finalised its replica and reported it to the NameNode.

If a node fails, the segment is sent again to the survivors under a new generation
stamp (they cut their copy back to the segment's start first); if every node fails
before the block holds any acknowledged byte, the block is abandoned and a new one
is allocated elsewhere. A first node answering 503 BUSY (at its transfer limit) is asked again
after a jittered backoff, and only counts as failed if it stays busy. `close()` returns only
once the NameNode has completed the file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from client.backoff import RetryBudget
from client.block_io import send_segment
from client.namenode_rpc import NameNodeRPC
from client.protocol.block_format import chunk_digests
from client.protocol.client_namenode import CommittedBlock, FileStatus, LocatedBlock, ReplicaReceipt
from client.protocol.common import DatanodeRef
from client.protocol.data_transfer import (
    WriteBlockHeader,
    WriteBlockResponse,
    WriteStage,
    encode_packet_prefix,
)
from client.protocol.errors import (
    DfsError,
    DfsTimeoutError,
    InvalidBlockTokenError,
    PipelineFailedError,
    ProtocolError,
    ServerBusyError,
)
from client.request_id import current_request_id, new_request_id, stream_operation

# A library logs through stdlib logging: silent unless the application configures it.
log = logging.getLogger(__name__)

MAX_PIPELINE_ATTEMPTS = 6
COMPLETE_DEADLINE_S = 60.0
#: How long a segment waits for a busy first pipeline node before that node counts as failed.
BUSY_DEADLINE_S = 30.0


@dataclass
class WriteOptions:
    bytes_per_checksum: int
    packet_size: int = 1024 * 1024
    segment_size: int = 8 * 1024 * 1024
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(120.0, connect=10.0))


@dataclass
class _Segment:
    offset: int  # where it starts in its block
    parts: list[bytes]
    size: int
    final: bool

    async def body(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


class DfsOutputStream:
    """An open file being written (async). Use `write`, then `close`; or `async with`."""

    def __init__(
        self,
        rpc: NameNodeRPC,
        http: httpx.AsyncClient,
        status: FileStatus,
        options: WriteOptions,
        on_close: asyncio.Event | None = None,
        *,
        last_block: CommittedBlock | None = None,
    ) -> None:
        """`last_block`: when appending, the file's existing last block (new data starts a new one)."""
        self.rpc = rpc
        self.http = http
        self.status = status
        self.path = status.path
        self.options = options
        self.block_size = status.block_size
        self._on_close = on_close
        self._packet: list[bytes] = []  # pieces of the packet being filled
        self._packet_size = 0
        self._packet_offset = 0  # block offset of the packet being filled
        self._block_pos = 0  # bytes of the current block handed to write()
        self._segment_parts: list[bytes] = []
        self._segment_offset = 0
        self._segment_size = 0
        self._block: LocatedBlock | None = None
        self._committed: CommittedBlock | None = last_block  # the last finished block
        self._inflight: asyncio.Task[None] | None = None
        self._excluded: set[str] = set()
        self._failure: BaseException | None = None
        self.bytes_written = 0
        self.closed = False
        #: Every later call (segments, pipeline recovery, complete) carries the id of the open.
        self.request_id = current_request_id() or new_request_id()

    async def __aenter__(self) -> DfsOutputStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            await self.close()
        else:
            await self.abort()

    # --- the public API --------------------------------------------------------------------

    @stream_operation
    async def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer `data`; ships packets and segments as they fill. Returns len(data)."""
        self._check_open()
        view = memoryview(data).cast("B")
        size = len(view)
        packet_size = self.options.packet_size
        while view:
            room = min(packet_size - self._packet_size, self.block_size - self._block_pos)
            # Copy now (the caller may reuse its buffer); join once per packet when sealing.
            take = bytes(view[:room])
            self._packet.append(take)
            self._packet_size += len(take)
            view = view[len(take) :]
            self._block_pos += len(take)
            self.bytes_written += len(take)
            block_full = self._block_pos == self.block_size
            if self._packet_size == packet_size or block_full:
                self._seal_packet()
            if block_full or self._segment_size >= self.options.segment_size:
                await self._ship(final=block_full)
        return size

    @stream_operation
    async def close(self) -> FileStatus:
        """Flush everything, wait for the pipelines, complete the file on the NameNode."""
        if self.closed:
            return self.status
        self._check_open()
        try:
            if self._packet:
                self._seal_packet()
            if self._block_pos > 0:
                await self._ship(final=True)
            await self._wait_inflight()
            closed = await self._complete()
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._finish()
        self.status = closed or await self.rpc.stat(self.path)
        return self.status

    @stream_operation
    async def abort(self) -> None:
        """Give up on the file: the NameNode recovers it now, keeping only finished blocks.

        Asked explicitly because waiting for the lease to lapse would not do: the client keeps
        renewing one lease for all its files while any other of its writers is open. A writer
        whose close() failed can still be aborted, so its file does not wait for the hard limit."""
        if self.closed and self._failure is None:
            return
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
        self._finish()
        try:
            await self.rpc.recover_lease(self.path, self.status.file_id)
        except DfsError as exc:  # the hard limit still recovers it
            log.warning("could not hand back %s for recovery: %s", self.path, exc)

    def _finish(self) -> None:
        self.closed = True
        if self._on_close is not None:
            self._on_close.set()

    def _check_open(self) -> None:
        if self._failure is not None:
            raise PipelineFailedError(f"an earlier write to {self.path} failed: {self._failure}", path=self.path)
        if self.closed:
            raise ValueError("I/O operation on closed file")

    # --- packets and segments ----------------------------------------------------------------

    def _seal_packet(self) -> None:
        data = self._packet[0] if len(self._packet) == 1 else b"".join(self._packet)
        self._packet = []
        self._packet_size = 0
        digests = chunk_digests(data, self.options.bytes_per_checksum)
        self._segment_parts.append(encode_packet_prefix(self._packet_offset, len(data), digests))
        self._segment_parts.append(data)
        self._segment_size += len(data)
        self._packet_offset += len(data)

    async def _ship(self, *, final: bool) -> None:
        segment = _Segment(self._segment_offset, self._segment_parts, self._segment_size, final)
        self._segment_parts = []
        self._segment_size = 0
        self._segment_offset = self._packet_offset
        if final:
            self._block_pos = self._packet_offset = self._segment_offset = 0
        await self._wait_inflight()
        try:
            if self._block is None:
                self._block = await self.rpc.add_block(
                    self.path, self.status.file_id, self._committed, sorted(self._excluded)
                )
        except BaseException as exc:
            self._failure = exc  # this segment's bytes are gone: no later write may pretend otherwise
            raise
        self._inflight = asyncio.ensure_future(self._send(segment))

    async def _wait_inflight(self) -> None:
        if self._inflight is None:
            return
        task, self._inflight = self._inflight, None
        try:
            await task
        except BaseException as exc:
            self._failure = exc
            raise

    # --- one segment, with pipeline recovery ---------------------------------------------

    async def _send(self, segment: _Segment) -> None:
        assert self._block is not None
        stage = WriteStage.CREATE if segment.offset == 0 else WriteStage.CONTINUE
        previous_gen_stamp: int | None = None
        last_error: BaseException | None = None
        for _attempt in range(MAX_PIPELINE_ATTEMPTS):
            block = self._block
            nodes = list(block.locations)
            header = WriteBlockHeader(
                block_id=block.block.block_id,
                gen_stamp=block.block.gen_stamp,
                stage=stage,
                offset=segment.offset,
                final=segment.final,
                bytes_per_checksum=self.options.bytes_per_checksum,
                downstream=nodes[1:],
                previous_gen_stamp=previous_gen_stamp,
                client_name=self.rpc.client_name,
            )
            ack: WriteBlockResponse | None = None
            try:
                ack = await self._send_waiting_if_busy(nodes[0], header, segment, block.token)
                failed = {a.datanode_id for a in ack.nodes if not a.ok and a.error is not None}
                if not failed and any(not a.ok for a in ack.nodes):
                    failed = {next(a.datanode_id for a in ack.nodes if not a.ok)}
            except InvalidBlockTokenError as exc:
                # Our token expired while this block was open (a slow writer): nothing was taken, and
                # pipeline recovery with every node brings a fresh token. A brand-new block has no
                # replica to recover, so there the node counts as failed.
                last_error = exc
                failed = {nodes[0].id} if segment.offset == 0 else set()
            except (DfsError, httpx.HTTPError) as exc:
                last_error = exc
                failed = {nodes[0].id}
            if ack is not None and self._segment_done(ack, segment):
                return
            self._excluded |= failed
            log.warning(
                "pipeline node failed: path=%s block=%s failed=%s error=%s",
                self.path,
                block.block.block_id,
                sorted(failed),
                last_error,
            )
            survivors = [node.id for node in nodes if node.id not in failed]
            if not survivors:
                if segment.offset == 0:
                    await self._replace_block(block)
                    stage, previous_gen_stamp = WriteStage.CREATE, None
                    continue
                raise PipelineFailedError(
                    f"every DataNode of the pipeline for block {block.block.block_id} failed: {last_error}",
                    path=self.path,
                ) from last_error
            previous_gen_stamp = block.block.gen_stamp
            self._block = await self.rpc.recover_pipeline(self.path, self.status.file_id, block.block, survivors)
            stage = WriteStage.RECOVER
        raise PipelineFailedError(
            f"gave up on block {self._block.block.block_id} after {MAX_PIPELINE_ATTEMPTS} pipeline attempts",
            path=self.path,
        ) from last_error

    async def _send_waiting_if_busy(
        self, target: DatanodeRef, header: WriteBlockHeader, segment: _Segment, token: str
    ) -> WriteBlockResponse:
        """send_segment, sent again after a jittered backoff while the first node answers 503 BUSY.

        A busy node refused before reading the body, so nothing changed on any node and the same
        header is still right. A node that stays busy for BUSY_DEADLINE_S raises its ServerBusyError,
        and the caller handles it as a failed node (pipeline recovery without it)."""
        budget: RetryBudget | None = None
        while True:
            try:
                return await send_segment(
                    self.http, target, header, segment.body(), token=token, timeout=self.options.timeout
                )
            except ServerBusyError as exc:
                budget = budget or RetryBudget(BUSY_DEADLINE_S)
                if not await budget.wait(exc.retry_after_s):
                    raise
                log.info("datanode busy, sending the segment again: path=%s datanode=%s", self.path, target.url)

    def _segment_done(self, ack: WriteBlockResponse, segment: _Segment) -> bool:
        """Is this segment safely stored? A final one needs one finalised copy; others need all nodes."""
        ok = [a for a in ack.nodes if a.ok]
        expected = segment.offset + segment.size
        if any(a.length != expected for a in ok):
            raise ProtocolError(f"pipeline acknowledged {[a.length for a in ok]} bytes, expected {expected}")
        if len(ok) < len(ack.nodes) and not (segment.final and ok):
            return False
        if segment.final:
            assert self._block is not None
            receipts = [
                ReplicaReceipt(datanode_id=a.datanode_id, length=expected, receipt=a.receipt)
                for a in ok
                if a.receipt is not None
            ]
            self._committed = CommittedBlock(
                block_id=ack.block_id, gen_stamp=ack.gen_stamp, length=expected, replicas=receipts
            )
            self._block = None
        return True

    async def _replace_block(self, block: LocatedBlock) -> None:
        """Nothing of this block was stored anywhere: drop it and allocate one on other nodes."""
        await self.rpc.abandon_block(self.path, self.status.file_id, block.block)
        self._block = await self.rpc.add_block(self.path, self.status.file_id, self._committed, sorted(self._excluded))

    async def _complete(self) -> FileStatus | None:
        """Ask the NameNode to complete the file, waiting while DataNode reports catch up; the
        closed file's status, if the NameNode sent it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMPLETE_DEADLINE_S
        delay = 0.02
        while not (answer := await self.rpc.complete(self.path, self.status.file_id, self._committed)).completed:
            if loop.time() > deadline:
                raise DfsTimeoutError(
                    f"{self.path}: DataNodes did not report the last block within {COMPLETE_DEADLINE_S}s",
                    path=self.path,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return answer.status
