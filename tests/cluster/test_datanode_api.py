"""A DataNode's data API on the wire: bad input gets a clear 4xx, corrupt input is never stored."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import httpx
import pytest

from client.protocol.common import HEADER_READ, HEADER_WRITE, DatanodeRef
from client.protocol.data_transfer import (
    PacketDecoder,
    ReadBlockHeader,
    WriteBlockHeader,
    WriteStage,
    encode_header_model,
    encode_packet,
)
from client.protocol.security import replica_receipt_key, verify_receipt
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

CHUNK = 64 * 1024


@pytest.fixture()
def datanode(cluster: MiniCluster) -> Iterator[httpx.Client]:
    node = cluster.datanodes[0]
    assert node.url is not None
    # Every block request carries a valid token: these tests are about what comes after the check.
    with httpx.Client(base_url=node.url, timeout=30.0, event_hooks={"request": [cluster.add_block_token]}) as http:
        yield http


def unknown_block_id() -> int:
    return random.randrange(10**12, 10**15)


def write_header(block_id: int, **changes: object) -> dict[str, str]:
    header = WriteBlockHeader(block_id=block_id, gen_stamp=1, stage=WriteStage.CREATE, final=True)
    return {HEADER_WRITE: encode_header_model(header.model_copy(update=changes))}


def packet_bytes(data: bytes, offset: int = 0) -> bytes:
    prefix, payload = encode_packet(offset, data, CHUNK)
    return prefix + bytes(payload)


def assert_error(response: httpx.Response, status: int, code: str, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert mentions in body["message"], body


def test_write_needs_a_valid_transfer_header(datanode: httpx.Client) -> None:
    block = unknown_block_id()
    body = packet_bytes(b"x" * 100)
    assert_error(datanode.post(f"/v1/blocks/{block}", content=body), 400, "INVALID_ARGUMENT", HEADER_WRITE)
    bad_json = {HEADER_WRITE: "{not json"}
    assert_error(datanode.post(f"/v1/blocks/{block}", content=body, headers=bad_json), 400, "INVALID_ARGUMENT")
    mismatch = write_header(block + 1)
    assert_error(
        datanode.post(f"/v1/blocks/{block}", content=body, headers=mismatch), 400, "INVALID_ARGUMENT", "names block"
    )
    odd_chunks = write_header(block, bytes_per_checksum=1000)
    assert_error(
        datanode.post(f"/v1/blocks/{block}", content=body, headers=odd_chunks), 400, "INVALID_ARGUMENT", "power of two"
    )
    for bad_id in ("0", "-5", "abc", str(2**64)):
        response = datanode.post(f"/v1/blocks/{bad_id}", content=body, headers=write_header(block))
        assert_error(response, 400, "INVALID_ARGUMENT")


def test_corrupt_packets_are_refused_and_never_stored(datanode: httpx.Client) -> None:
    block = unknown_block_id()
    good = packet_bytes(os.urandom(3 * CHUNK))
    flipped = bytearray(good)
    flipped[-10] ^= 0x01  # a data byte changed after its checksum was computed
    response = datanode.post(f"/v1/blocks/{block}", content=bytes(flipped), headers=write_header(block))
    assert_error(response, 422, "CHECKSUM_MISMATCH", "checksum mismatch")
    assert_error(datanode.get(f"/v1/blocks/{block}", params={"gen_stamp": 1}), 404, "REPLICA_NOT_FOUND")

    bad_magic = b"JUNK" + good[4:]
    response = datanode.post(f"/v1/blocks/{block}", content=bad_magic, headers=write_header(block))
    assert_error(response, 400, "PROTOCOL_ERROR", "magic")
    truncated = good[: len(good) // 2]
    response = datanode.post(f"/v1/blocks/{block}", content=truncated, headers=write_header(block))
    assert_error(response, 400, "PROTOCOL_ERROR", "ended inside a packet")
    gap = packet_bytes(b"a" * CHUNK) + packet_bytes(b"b" * CHUNK, offset=5 * CHUNK)
    response = datanode.post(f"/v1/blocks/{block}", content=gap, headers=write_header(block))
    assert_error(response, 400, "INVALID_ARGUMENT", "starts at")
    # A failed segment leaves what it wrote in rbw (a recovery may continue it), never finalised.
    assert_error(datanode.get(f"/v1/blocks/{block}", params={"gen_stamp": 1}), 404, "REPLICA_NOT_FOUND")
    other = unknown_block_id()
    continue_missing = write_header(other, stage=WriteStage.CONTINUE, offset=CHUNK)
    response = datanode.post(f"/v1/blocks/{other}", content=packet_bytes(b"z", CHUNK), headers=continue_missing)
    assert_error(response, 404, "REPLICA_NOT_FOUND")


def test_reads_of_missing_or_out_of_range_blocks(cluster: MiniCluster, datanode: httpx.Client, remote_dir: str) -> None:
    assert_error(datanode.get(f"/v1/blocks/{unknown_block_id()}", params={"gen_stamp": 1}), 404, "REPLICA_NOT_FOUND")
    assert_error(datanode.get("/v1/blocks/1"), 400, "INVALID_ARGUMENT", "gen_stamp")
    assert_error(datanode.get("/v1/blocks/1", params={"gen_stamp": 1, "offset": -1}), 400, "INVALID_ARGUMENT")
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/f", os.urandom(1000), replication=4)
        block = fs.block_locations(f"{remote_dir}/f").blocks[0].block
    params = {"gen_stamp": block.gen_stamp, "offset": 5000}
    assert_error(datanode.get(f"/v1/blocks/{block.block_id}", params=params), 400, "INVALID_ARGUMENT", "past the end")
    newer = {"gen_stamp": block.gen_stamp + 1}
    assert_error(datanode.get(f"/v1/blocks/{block.block_id}", params=newer), 404, "REPLICA_NOT_FOUND", "older")
    again = datanode.post(
        f"/v1/blocks/{block.block_id}", content=packet_bytes(b"y"), headers=write_header(block.block_id)
    )
    assert_error(again, 409, "REPLICA_EXISTS")


def test_ranged_reads_are_chunk_aligned_and_verified(
    cluster: MiniCluster, datanode: httpx.Client, remote_dir: str
) -> None:
    data = os.urandom(5 * CHUNK + 123)
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/ranged", data, replication=4)
        block = fs.block_locations(f"{remote_dir}/ranged").blocks[0].block
    response = datanode.get(
        f"/v1/blocks/{block.block_id}", params={"gen_stamp": block.gen_stamp, "offset": CHUNK + 7, "length": 2 * CHUNK}
    )
    info = ReadBlockHeader.model_validate_json(response.headers[HEADER_READ])
    assert (info.offset, info.length, info.replica_length) == (CHUNK, 3 * CHUNK, len(data))
    packets = list(PacketDecoder(CHUNK).feed(response.content))
    assert b"".join(bytes(p.data) for p in packets) == data[CHUNK : 4 * CHUNK]


def test_a_block_the_namenode_does_not_know_is_deleted(cluster: MiniCluster, datanode: httpx.Client) -> None:
    block = unknown_block_id()
    response = datanode.post(f"/v1/blocks/{block}", content=packet_bytes(b"stray"), headers=write_header(block))
    assert response.status_code == 200
    assert response.json()["nodes"][0]["ok"] is True
    # Its incremental report names a block of no file: the NameNode has it deleted.
    wait_until(
        lambda: datanode.get(f"/v1/blocks/{block}", params={"gen_stamp": 1}).status_code == 404,
        30,
        "the stray replica to be deleted",
    )


def test_every_node_of_a_pipeline_acknowledges_a_final_segment_with_a_receipt(
    cluster: MiniCluster, datanode: httpx.Client
) -> None:
    """The receipts the writer hands to the NameNode with its commit (namenode/replica_receipts.py):
    each verifies with the cluster secret for that node, that block, stamp and length only."""
    block = unknown_block_id()
    others = [DatanodeRef(id=cluster.datanode_info(node)["id"], url=node.url or "") for node in cluster.datanodes[1:3]]
    data = os.urandom(CHUNK + 10)
    headers = write_header(block, downstream=others)
    response = datanode.post(f"/v1/blocks/{block}", content=packet_bytes(data), headers=headers)
    assert response.status_code == 200, response.text
    key = replica_receipt_key(cluster.secret())
    acks = response.json()["nodes"]
    assert len(acks) == 3 and len({ack["datanode_id"] for ack in acks}) == 3
    for ack in acks:
        assert ack["ok"] and ack["length"] == len(data)
        assert verify_receipt(key, ack["receipt"], ack["datanode_id"], block, 1, len(data))
        assert not verify_receipt(key, ack["receipt"], ack["datanode_id"], block, 2, len(data))
        assert not verify_receipt(key, ack["receipt"], ack["datanode_id"], block, 1, len(data) - 1)
    # A segment that is not final finalises nothing, so it is acknowledged without one.
    other = unknown_block_id()
    partial = datanode.post(f"/v1/blocks/{other}", content=packet_bytes(data), headers=write_header(other, final=False))
    assert partial.status_code == 200 and partial.json()["nodes"][0]["receipt"] is None
