"""HTTP binding of the data transfer protocol on a DataNode (see client.protocol.data_transfer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from client.protocol.common import HEADER_READ, HEADER_WRITE, MAX_INT64
from client.protocol.data_transfer import (
    BLOCK_CHECKSUM_ROUTE,
    BlockChecksumResponse,
    WriteBlockHeader,
    WriteBlockResponse,
    encode_header_model,
)
from client.protocol.errors import InvalidArgumentError
from client.protocol.hadoop_checksum import BYTES_PER_CRC
from datanode.service import DataNode

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
        return await datanode.receiver.receive(header, request.stream())


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
        datanode.counted(packets),
        media_type="application/octet-stream",
        headers={HEADER_READ: encode_header_model(header)},
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
