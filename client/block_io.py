"""Data path primitives: send one write segment to a pipeline, read verified bytes of one block.

Both the SDK and DataNodes (pipeline forwarding, re-replication) use these, so the
packet framing of docs/protocol.md is spoken by exactly one implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable

import httpx

from client.protocol.block_format import verify_chunks
from client.protocol.common import HEADER_READ, HEADER_WRITE, DatanodeRef, ExtendedBlock
from client.protocol.data_transfer import (
    PacketDecoder,
    ReadBlockHeader,
    WriteBlockHeader,
    WriteBlockResponse,
    block_url,
    encode_header_model,
)
from client.protocol.errors import ProtocolError, error_from_body
from client.protocol.security import HEADER_BLOCK_TOKEN
from client.transport import error_from_transport, raise_for_error


async def send_segment(
    http: httpx.AsyncClient,
    target: DatanodeRef,
    header: WriteBlockHeader,
    body: AsyncIterable[bytes] | Iterable[bytes] | bytes,
    *,
    token: str = "",
    timeout: httpx.Timeout | None = None,
) -> WriteBlockResponse:
    """POST one segment (packets) to the first node of a pipeline; returns every node's ack.

    `token` is the block access token every node of the pipeline checks (forwarded as is)."""
    headers = {HEADER_WRITE: encode_header_model(header)}
    if token:
        headers[HEADER_BLOCK_TOKEN] = token
    try:
        response = await http.post(
            block_url(target.url, header.block_id),
            content=body,
            headers=headers,
            timeout=timeout or http.timeout,
        )
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, target.url) from exc
    await raise_for_error(response)
    try:
        return WriteBlockResponse.model_validate_json(response.content)
    except ValueError as exc:
        raise ProtocolError(f"{target.url} sent an unreadable write acknowledgement: {exc}") from exc


async def read_block(
    http: httpx.AsyncClient,
    node: DatanodeRef,
    block: ExtendedBlock,
    offset: int,
    length: int,
    token: str = "",
) -> AsyncIterator[memoryview]:
    """Verified bytes of block[offset:offset+length] from one DataNode, in order.

    Raises ChecksumMismatchError if a chunk does not match its checksum (the caller
    reports the replica and fails over), and other DfsErrors for transport trouble.
    """
    params = {"gen_stamp": block.gen_stamp, "offset": offset, "length": length}
    url = block_url(node.url, block.block_id)
    headers = {HEADER_BLOCK_TOKEN: token} if token else None
    try:
        async with http.stream("GET", url, params=params, headers=headers) as response:
            await raise_for_error(response)
            # Closed here, not by the garbage collector, when the reader stops early.
            async with contextlib.aclosing(_verified_body(response, node, offset, length)) as body:
                async for view in body:
                    yield view
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, node.url) from exc


async def _verified_body(
    response: httpx.Response, node: DatanodeRef, offset: int, length: int
) -> AsyncGenerator[memoryview, None]:
    try:
        info = ReadBlockHeader.model_validate_json(response.headers.get(HEADER_READ, ""))
    except ValueError as exc:
        raise ProtocolError(f"{node.url} sent no valid {HEADER_READ} header") from exc
    end = offset + length
    decoder = PacketDecoder(info.bytes_per_checksum)
    position = info.offset
    async for piece in response.aiter_raw():
        for packet in decoder.feed(piece):
            if packet.is_error:
                raise error_from_body(packet.error_body())
            if packet.offset != position:
                raise ProtocolError(f"{node.url} sent a packet at {packet.offset}, expected {position}")
            verify_chunks(
                packet.data,
                packet.digests,
                info.bytes_per_checksum,
                block_offset=packet.offset,
                what=f"block {info.block_id} from {node.url}",
            )
            start = max(offset, position) - position
            stop = min(end, position + len(packet.data)) - position
            position += len(packet.data)
            if stop > start:
                yield packet.data[start:stop]
    if decoder.pending or position < min(end, info.offset + info.length):
        raise ProtocolError(f"{node.url} ended block {info.block_id} early at offset {position}")
