"""Receiving one write segment: verify, write, forward, and acknowledge for the whole pipeline.

For every packet: forward its bytes downstream, then verify and write it here (in a
worker thread, overlapping the next packet's arrival). At the end of the body: for a
final segment fsync + finalise this copy while the downstream does the same, then answer
with this node's ack (carrying a signed receipt for the finalised replica, which the writer
hands to the NameNode with its commit) followed by the downstream's. The replica's own report
to the NameNode is queued, not awaited: it is off the writer's critical path.
A failure here is answered with an error status (after draining the body, so the
sender reads a clear error rather than a broken pipe).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import structlog

from client.protocol.common import MAX_INT64, DatanodeRef
from client.protocol.data_transfer import (
    NodeAck,
    Packet,
    PacketDecoder,
    WriteBlockHeader,
    WriteBlockResponse,
    WriteStage,
)
from client.protocol.datanode_namenode import ReplicaState
from client.protocol.errors import (
    ChecksumMismatchError,
    DfsError,
    InternalError,
    InvalidArgumentError,
    NoSpaceError,
    ProtocolError,
    RequestTooLargeError,
)
from client.protocol.security import sign_receipt
from datanode.counters import DataNodeCounters, ErrorKind
from datanode.pipeline import PipelineForwarder
from datanode.storage.block_store import BlockStore, ReplicaInfo
from datanode.storage.replica_writer import ReplicaWriter

log = structlog.get_logger(__name__)

#: Most bytes of a failed segment read and dropped before answering (a segment is 8 MiB by
#: default; a re-replication copy sends a whole block, but its sender copes with an early answer).
MAX_DRAIN_BYTES = 64 * 1024 * 1024


def open_writer(store: BlockStore, header: WriteBlockHeader) -> ReplicaWriter:
    """Open the replica this segment belongs to, in the state its stage expects."""
    bpc = header.bytes_per_checksum
    if header.stage in (WriteStage.CREATE, WriteStage.REPLICATE):
        if header.offset != 0:
            raise InvalidArgumentError(f"a {header.stage.value} segment must start at offset 0")
        return ReplicaWriter.create(store, header.block_id, header.gen_stamp, bpc, replace_rbw=True)
    accepted = {header.gen_stamp}
    if header.stage is WriteStage.RECOVER:
        if header.previous_gen_stamp is not None:
            accepted.add(header.previous_gen_stamp)
        existing = store.get(header.block_id)
        if existing is None and header.offset == 0:
            return ReplicaWriter.create(store, header.block_id, header.gen_stamp, bpc)
        if existing is not None and existing.state is ReplicaState.FINALIZED and existing.gen_stamp in accepted:
            store.unfinalize(existing)
    return ReplicaWriter.reopen(
        store, header.block_id, header.gen_stamp, bpc, header.offset, accepted_gen_stamps=accepted
    )


class BlockReceiver:
    def __init__(
        self,
        store: BlockStore,
        http: httpx.AsyncClient,
        disk: concurrent.futures.Executor,
        me: Callable[[], DatanodeRef],
        on_finalized: Callable[[ReplicaInfo, bool], Awaitable[None]],
        transfer_timeout_s: float,
        counters: DataNodeCounters | None = None,
        max_block_size: int = MAX_INT64,
        receipt_key: bytes | None = None,
    ) -> None:
        #: Signs the receipt of each finalised replica (client.protocol.security.sign_receipt).
        self.receipt_key = receipt_key
        self.max_block_size = max_block_size
        self.store = store
        self.http = http
        self.disk = disk
        self.me = me
        self.on_finalized = on_finalized
        self.timeout = transfer_timeout_s
        self.counters = counters or DataNodeCounters()

    async def _run(self, fn: Callable[..., object], *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self.disk, fn, *args)

    async def receive(
        self, header: WriteBlockHeader, body: AsyncIterator[bytes], token: str = ""
    ) -> WriteBlockResponse:
        """Take one segment; raises a DfsError (after draining `body`) if this node failed."""
        forwarder = PipelineForwarder(self.http, header, self.timeout, token) if header.downstream else None
        writer: ReplicaWriter | None = None
        local: asyncio.Future[None] | None = None
        try:
            writer = await asyncio.get_running_loop().run_in_executor(self.disk, open_writer, self.store, header)
            await self._stream(header, body, writer, forwarder)
            # This copy is finished (for a final segment: fsync'd and finalised) while the downstream
            # finishes its own.
            local = asyncio.ensure_future(self._finish_here(writer, header.final, _vouched(header)))
            downstream = await forwarder.finish() if forwarder else []
            await local
        except BaseException as exc:
            if local is not None:
                await asyncio.wait([local])  # the writer is not thread-safe: let its finalize end first
                if not local.cancelled():
                    local.exception()  # retrieved here: the error answered is the one that stopped us
            if writer is not None:
                await self._run(writer.close)
            if forwarder is not None:
                await forwarder.abort()
            if isinstance(exc, asyncio.CancelledError | GeneratorExit):
                raise
            error = _as_dfs_error(exc, header)
            if isinstance(error, NoSpaceError) and writer is not None and header.stage is not WriteStage.RECOVER:
                await self._run(self._discard_partial, header.block_id)
            self._record_failure(error, header.block_id)
            await _drain(body)
            raise error from exc
        self._record_downstream(downstream, header.block_id)
        me = self.me()
        receipt = None
        if header.final and _vouched(header) and self.receipt_key is not None:
            receipt = sign_receipt(self.receipt_key, me.id, header.block_id, header.gen_stamp, writer.length)
        own = NodeAck(datanode_id=me.id, url=me.url, ok=True, length=writer.length, receipt=receipt)
        return WriteBlockResponse(
            block_id=header.block_id,
            gen_stamp=header.gen_stamp,
            length=writer.length,
            final=header.final,
            nodes=[own, *downstream],
        )

    async def _finish_here(self, writer: ReplicaWriter, final: bool, vouched: bool) -> None:
        """Close this copy; a final segment's is fsync'd and finalised before the ack, and handed to
        `on_finalized`, which queues its report (`vouched`: the ack's receipt speaks for it meanwhile)."""
        if not final:
            await self._run(writer.close)
            return
        replica = await self._run(writer.finalize)
        if isinstance(replica, ReplicaInfo):
            await self.on_finalized(replica, vouched)

    async def _stream(
        self,
        header: WriteBlockHeader,
        body: AsyncIterator[bytes],
        writer: ReplicaWriter,
        forwarder: PipelineForwarder | None,
    ) -> None:
        decoder = PacketDecoder(header.bytes_per_checksum)
        pending: asyncio.Future[object] | None = None
        pending_size = 0
        async for piece in body:
            for packet in decoder.feed(piece):
                if packet.is_error:
                    raise ProtocolError("a writer must not send error packets")
                if packet.offset + len(packet.data) > self.max_block_size:
                    # Checked before the packet is forwarded or written: no replica grows past the limit.
                    raise RequestTooLargeError(
                        f"block {header.block_id} would grow past this DataNode's maximum block size "
                        f"{self.max_block_size} (packet at {packet.offset}, {len(packet.data)} bytes)"
                    )
                if forwarder is not None:
                    await forwarder.put(packet.raw)
                if pending is not None:
                    await pending
                    self.counters.bytes_received += pending_size
                pending = asyncio.ensure_future(self._run(_write, writer, packet))
                pending_size = len(packet.data)
        if pending is not None:
            await pending
            self.counters.bytes_received += pending_size
        if decoder.pending:
            raise ProtocolError(f"segment for block {header.block_id} ended inside a packet")

    def _discard_partial(self, block_id: int) -> None:
        """A replica that ran out of space is never used again: the writer drops this node from the
        pipeline and recovers the block on the others. Free its space now, on a disk that is full,
        instead of at the next full block report. (A RECOVER may have reopened a finalised replica:
        that one is left for the NameNode to judge.)"""
        replica = self.store.get(block_id)
        if replica is not None and replica.state is ReplicaState.RBW:
            self.store.discard(replica)
            log.warning("partial replica discarded after running out of space", block=block_id)

    def _record_failure(self, error: DfsError, block_id: int) -> None:
        """Log a failed segment in the recent errors; a corrupt packet also counts as a checksum failure."""
        if isinstance(error, ChecksumMismatchError):
            self.counters.checksum_failure(ErrorKind.CORRUPT_PACKET, error.message, block_id)
        elif isinstance(error, NoSpaceError):
            self.counters.record_error(ErrorKind.DISK_FULL, error.message, block_id)
        else:
            self.counters.record_error(ErrorKind.WRITE_FAILED, error.message, block_id)

    def _record_downstream(self, downstream: list[NodeAck], block_id: int) -> None:
        failed = next((ack for ack in downstream if not ack.ok), None)
        if failed is not None:
            reason = failed.error.message if failed.error is not None else "no acknowledgement"
            self.counters.record_error(ErrorKind.PIPELINE_ERROR, f"downstream {failed.url}: {reason}", block_id)


def _vouched(header: WriteBlockHeader) -> bool:
    """Does a receipt reach the NameNode with the writer's commit? Not for a DataNode's copy: no
    client commits it, so only the copy's own report tells the NameNode it arrived."""
    return header.stage is not WriteStage.REPLICATE


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read what is left of a failed segment's body (up to MAX_DRAIN_BYTES), so the sender reads
    our answer instead of a broken pipe; a sender that keeps going past that is answered anyway."""
    drained = 0
    with contextlib.suppress(Exception):
        async for piece in body:
            drained += len(piece)
            if drained > MAX_DRAIN_BYTES:
                return


def _write(writer: ReplicaWriter, packet: Packet) -> None:
    writer.write_packet(packet.offset, packet.data, packet.digests)


def _as_dfs_error(exc: BaseException, header: WriteBlockHeader) -> DfsError:
    if isinstance(exc, DfsError):
        return exc
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return NoSpaceError(f"no space left for block {header.block_id}: {exc}")
    log.exception("write failed", block=header.block_id, exc_info=exc)
    return InternalError(f"writing block {header.block_id} failed: {exc}")
