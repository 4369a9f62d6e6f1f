"""HTTP binding of the data transfer protocol on a DataNode (see client.protocol.data_transfer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from client.protocol.common import HEADER_READ, HEADER_WRITE, MAX_INT64
from client.protocol.data_transfer import (
    BLOCK_CHECKSUM_ROUTE,
    BlockChecksumResponse,
    ReadBlockHeader,
    WriteBlockHeader,
    WriteBlockResponse,
    encode_header_model,
)
from client.protocol.errors import DfsError, InvalidArgumentError
from client.protocol.hadoop_checksum import BYTES_PER_CRC
from datanode.service import DataNode

log = structlog.get_logger(__name__)

router = APIRouter(tags=["blocks"])

BlockIdParam = Annotated[int, Path(gt=0, le=MAX_INT64)]


def get_datanode(request: Request) -> DataNode:
    datanode: DataNode = request.app.state.datanode
    return datanode


DataNodeDep = Annotated[DataNode, Depends(get_datanode)]


@router.post("/v1/blocks/{block_id}")
async def write_block(
    block_id: BlockIdParam,
    request: Request,
    datanode: DataNodeDep,
    transfer: Annotated[str, Header(alias=HEADER_WRITE, max_length=16384)],
) -> WriteBlockResponse:
    """Take one segment of a block (packets in the body) and pass it down the pipeline."""
    try:
        header = WriteBlockHeader.model_validate_json(transfer)
    except ValueError as exc:
        raise InvalidArgumentError(f"invalid {HEADER_WRITE} header: {exc}") from exc
    if header.block_id != block_id:
        raise InvalidArgumentError(f"{HEADER_WRITE} names block {header.block_id}, the URL block {block_id}")
    with datanode.transfer():
        try:
            answer = await datanode.receiver.receive(header, request.stream())
        except DfsError as exc:
            log.warning("block write failed", block=block_id, stage=header.stage.value, code=exc.code.value)
            raise
    # One line per finished replica at info; the segments before it (8 MiB each) only at debug.
    (log.info if header.final else log.debug)(
        "block written" if header.final else "segment written",
        block=block_id,
        gen_stamp=header.gen_stamp,
        stage=header.stage.value,
        bytes=answer.length - header.offset,
        length=answer.length,
        downstream=len(header.downstream),
    )
    return answer


@router.get("/v1/blocks/{block_id}")
async def read_block(
    block_id: BlockIdParam,
    datanode: DataNodeDep,
    gen_stamp: Annotated[int, Query(gt=0, le=MAX_INT64)],
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    length: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
) -> StreamingResponse:
    """Stream verified packets of block[offset:offset+length] (widened to whole chunks)."""
    header, packets = await datanode.sender.open(block_id, gen_stamp, offset, length)
    return StreamingResponse(
        datanode.counted(_logged(header, packets)),
        media_type="application/octet-stream",
        headers={HEADER_READ: encode_header_model(header)},
    )


async def _logged(header: ReadBlockHeader, packets: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The read's packets, then one line saying how it ended (a reader may stop early)."""
    sent = 0
    complete = False
    try:
        async for piece in packets:
            sent += len(piece)
            yield piece
        complete = True
    finally:
        log.info(
            "block read",
            block=header.block_id,
            offset=header.offset,
            length=header.length,
            sent_bytes=sent,
            complete=complete,
        )


@router.get(BLOCK_CHECKSUM_ROUTE)
async def block_checksum(
    block_id: BlockIdParam,
    datanode: DataNodeDep,
    gen_stamp: Annotated[int, Query(gt=0, le=MAX_INT64)],
    length: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    bytes_per_crc: Annotated[int, Query(gt=0)] = BYTES_PER_CRC,
) -> BlockChecksumResponse:
    """Hadoop's MD5-of-CRC32C of block[0:length], from replica bytes verified on the way."""
    with datanode.transfer():
        return await datanode.checksummer.compute(block_id, gen_stamp, length, bytes_per_crc)
