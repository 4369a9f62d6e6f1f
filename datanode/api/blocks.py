"""HTTP binding of the data transfer protocol on a DataNode (see client.protocol.data_transfer)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from client.protocol.common import HEADER_READ, HEADER_WRITE, MAX_INT64
from client.protocol.data_transfer import (
    BLOCK_CHECKSUM_ROUTE,
    BlockChecksumResponse,
    ReadBlockHeader,
    WriteBlockHeader,
    WriteBlockResponse,
    WriteStage,
    encode_header_model,
)
from client.protocol.errors import DfsError, InvalidArgumentError
from client.protocol.hadoop_checksum import BYTES_PER_CRC
from client.protocol.security import BLOCK_TOKEN_PARAM, HEADER_BLOCK_TOKEN, MAX_TOKEN_LENGTH, BlockAccessMode
from datanode.service import DataNode
from server_common.openapi import binary_request_body, binary_response, error_responses

log = structlog.get_logger(__name__)

#: A bad block token (403), no such replica (404), a replica in the way or of another generation (409),
#: the transfer limit (503).
router = APIRouter(tags=["blocks"], responses=error_responses(403, 404, 409, 503))

BlockIdParam = Annotated[int, Path(gt=0, le=MAX_INT64)]
#: A read answers packets, described by the ReadBlockHeader in X-DFS-Read.
READ_RESPONSE = binary_response(
    "Chunk-aligned packets of the block (client.protocol.data_transfer).",
    headers={HEADER_READ: {"description": "The ReadBlockHeader as JSON.", "schema": {"type": "string"}}},
)


async def get_datanode(request: Request) -> DataNode:
    """async, though it awaits nothing: a plain `def` dependency would cost every request a hand-off
    to FastAPI's worker threads."""
    datanode: DataNode = request.app.state.datanode
    return datanode


DataNodeDep = Annotated[DataNode, Depends(get_datanode)]
BlockTokenHeader = Annotated[str | None, Header(alias=HEADER_BLOCK_TOKEN, max_length=MAX_TOKEN_LENGTH)]
BlockTokenQuery = Annotated[str | None, Query(alias=BLOCK_TOKEN_PARAM, max_length=MAX_TOKEN_LENGTH)]


def check_token(
    datanode: DataNode, request: Request, header: str | None, query: str | None, block_id: int, mode: BlockAccessMode
) -> str:
    """The user a valid block token names (header or `block_token` parameter); 403 otherwise."""
    peer = request.client.host if request.client else None
    return datanode.block_tokens.check(header or query, block_id, mode, peer=peer)


@router.post(
    "/v1/blocks/{block_id}",
    responses=error_responses(422, 502, 504, 507),
    openapi_extra=binary_request_body("Packets of the segment (client.protocol.data_transfer)."),
)
async def write_block(
    block_id: BlockIdParam,
    request: Request,
    datanode: DataNodeDep,
    transfer: Annotated[
        str, Header(alias=HEADER_WRITE, max_length=16384, description="The segment's WriteBlockHeader as JSON.")
    ],
    token: BlockTokenHeader = None,
    token_param: BlockTokenQuery = None,
) -> WriteBlockResponse:
    """Take one segment of a block (packets in the body) and pass it down the pipeline."""
    try:
        header = WriteBlockHeader.model_validate_json(transfer)
    except ValueError as exc:
        raise InvalidArgumentError(f"invalid {HEADER_WRITE} header: {exc}") from exc
    if header.block_id != block_id:
        raise InvalidArgumentError(f"{HEADER_WRITE} names block {header.block_id}, the URL block {block_id}")
    mode = BlockAccessMode.REPLICATE if header.stage is WriteStage.REPLICATE else BlockAccessMode.WRITE
    check_token(datanode, request, token, token_param, block_id, mode)
    # Copies the NameNode scheduled are never refused: it paces them already (max_replication_streams),
    # and a refused copy would wait out the pending-replication timeout.
    slot = datanode.transfer() if header.stage is WriteStage.REPLICATE else datanode.admit()
    with slot:
        try:
            answer = await datanode.receiver.receive(header, request.stream(), token or token_param or "")
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


@router.get(
    "/v1/blocks/{block_id}",
    response_class=StreamingResponse,
    responses={200: READ_RESPONSE, **error_responses(422)},
)
async def read_block(
    block_id: BlockIdParam,
    request: Request,
    datanode: DataNodeDep,
    gen_stamp: Annotated[int, Query(gt=0, le=MAX_INT64)],
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    length: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    token: BlockTokenHeader = None,
    token_param: BlockTokenQuery = None,
) -> StreamingResponse:
    """Stream verified packets of block[offset:offset+length] (widened to whole chunks)."""
    check_token(datanode, request, token, token_param, block_id, BlockAccessMode.READ)
    slot = contextlib.ExitStack()
    slot.enter_context(datanode.admit())
    try:
        header, packets = await datanode.sender.open(block_id, gen_stamp, offset, length)
    except BaseException:
        slot.close()
        raise
    return TransferResponse(
        _logged(header, packets),
        release=slot.close,
        media_type="application/octet-stream",
        headers={HEADER_READ: encode_header_model(header)},
    )


class TransferResponse(StreamingResponse):
    """A streamed read that holds its transfer slot until the response is done, however it ends
    (a stream the client abandons before its first byte is never iterated, so a slot taken in
    the generator itself could leak)."""

    def __init__(self, content: AsyncIterator[bytes], *, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


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


@router.get(BLOCK_CHECKSUM_ROUTE, responses=error_responses(422))
async def block_checksum(
    block_id: BlockIdParam,
    request: Request,
    datanode: DataNodeDep,
    gen_stamp: Annotated[int, Query(gt=0, le=MAX_INT64)],
    length: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    bytes_per_crc: Annotated[int, Query(gt=0)] = BYTES_PER_CRC,
    token: BlockTokenHeader = None,
    token_param: BlockTokenQuery = None,
) -> BlockChecksumResponse:
    """Hadoop's MD5-of-CRC32C of block[0:length], from replica bytes verified on the way."""
    check_token(datanode, request, token, token_param, block_id, BlockAccessMode.READ)
    with datanode.admit():
        return await datanode.checksummer.compute(block_id, gen_stamp, length, bytes_per_crc)
