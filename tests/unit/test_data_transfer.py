"""Data-transfer packets (encode + sans-I/O decoder) and the block header models."""

from __future__ import annotations

import itertools
import json
import random
import struct
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from client.protocol import data_transfer as dt
from client.protocol.block_format import chunk_digests
from client.protocol.common import DatanodeRef
from client.protocol.errors import ErrorBody, ErrorCode, ProtocolError

BPC = 512


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def encoded(offset: int, data: bytes, bpc: int = BPC) -> bytes:
    """The exact bytes of one data packet on the wire."""
    prefix, body = dt.encode_packet(offset, data, bpc)
    return prefix + bytes(body)


def split_at(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`stream` cut at the given positions (duplicates and out-of-range cuts are ignored)."""
    points = sorted({cut for cut in cuts if 0 < cut < len(stream)})
    bounds = [0, *points, len(stream)]
    return [stream[start:end] for start, end in itertools.pairwise(bounds)]


def decode_all(decoder: dt.PacketDecoder, pieces: Iterable[bytes | bytearray | memoryview]) -> list[dt.Packet]:
    packets: list[dt.Packet] = []
    for piece in pieces:
        packets.extend(decoder.feed(piece))
    return packets


def raw_header(
    *,
    magic: bytes = b"DFSP",
    version: int = 1,
    flags: int = 0,
    offset: int = 0,
    data_len: int = 0,
    ck_len: int = 0,
) -> bytes:
    return struct.pack("<4sBBHQII", magic, version, flags, 0, offset, data_len, ck_len)


# --- encoding ---------------------------------------------------------------------------------


def test_packet_layout() -> None:
    data = random_bytes(1000, seed=1)
    prefix, body = dt.encode_packet(4096, data, BPC)
    assert body is data, "the data must not be copied"
    assert dt.PACKET_HEADER_SIZE == 24
    assert prefix[:24] == raw_header(offset=4096, data_len=1000, ck_len=16)
    assert prefix[24:] == chunk_digests(data, BPC)


def test_encode_packet_accepts_a_memoryview_without_copying() -> None:
    data = memoryview(random_bytes(700, seed=2))
    prefix, body = dt.encode_packet(0, data, BPC)
    assert body is data
    assert prefix[24:] == chunk_digests(bytes(data), BPC)


def test_empty_packet_is_just_a_header() -> None:
    assert encoded(123, b"") == raw_header(offset=123)


# --- decoding: round trip under arbitrary splits ----------------------------------------------

packet_specs = st.lists(
    st.tuples(st.integers(0, 2**40), st.integers(0, 5000), st.integers(0, 2**32)), min_size=1, max_size=6
)


@settings(max_examples=200)
@given(packet_specs, st.sampled_from([512, 1024, 4096]), st.lists(st.integers(0, 40_000), max_size=60))
def test_decoder_reassembles_packets_split_anywhere(
    specs: list[tuple[int, int, int]], bpc: int, cuts: list[int]
) -> None:
    wire_packets = [(offset, random_bytes(size, seed)) for offset, size, seed in specs]
    raws = [encoded(offset, data, bpc) for offset, data in wire_packets]
    stream = b"".join(raws)

    packets = decode_all(dt.PacketDecoder(bpc), split_at(stream, cuts))

    assert len(packets) == len(wire_packets)
    for packet, (offset, data), raw in zip(packets, wire_packets, raws, strict=True):
        assert packet.offset == offset
        assert bytes(packet.data) == data
        assert bytes(packet.digests) == chunk_digests(data, bpc)
        assert packet.raw == raw
        assert not packet.is_error
        assert packet.flags == 0


@settings(max_examples=30)
@given(st.lists(st.integers(0, 1500), min_size=1, max_size=4), st.integers(0, 2**32))
def test_decoder_handles_one_byte_pieces(sizes: list[int], seed: int) -> None:
    datas = [random_bytes(size, seed + index) for index, size in enumerate(sizes)]
    stream = b"".join(encoded(index * 10_000, data) for index, data in enumerate(datas))
    decoder = dt.PacketDecoder(BPC)

    packets = decode_all(decoder, (stream[i : i + 1] for i in range(len(stream))))

    assert [bytes(packet.data) for packet in packets] == datas
    assert [packet.offset for packet in packets] == [index * 10_000 for index in range(len(sizes))]
    assert decoder.pending == 0


def test_decoder_yields_every_packet_of_a_single_piece() -> None:
    datas = [random_bytes(size, size) for size in (0, 1, 512, 513, 3000)]
    stream = b"".join(encoded(i, data) for i, data in enumerate(datas))
    packets = list(dt.PacketDecoder(BPC).feed(stream))
    assert [bytes(packet.data) for packet in packets] == datas


def test_decoder_accepts_bytearray_and_memoryview_pieces() -> None:
    stream = encoded(0, random_bytes(2000, seed=3))
    decoder = dt.PacketDecoder(BPC)
    packets = decode_all(decoder, [bytearray(stream[:100]), memoryview(stream)[100:]])
    assert len(packets) == 1
    assert packets[0].raw == stream


def test_decoded_packet_survives_further_feeding() -> None:
    """`raw`, `data` and `digests` must not alias the decoder's buffer, which later pieces overwrite."""
    first, second = random_bytes(1000, seed=4), random_bytes(1000, seed=5)
    decoder = dt.PacketDecoder(BPC)
    (packet,) = decoder.feed(encoded(0, first))
    list(decoder.feed(encoded(1000, second)))
    assert bytes(packet.data) == first
    assert packet.raw == encoded(0, first)


@settings(max_examples=100)
@given(st.integers(0, 5000), st.integers(0, 2**32), st.data())
def test_pending_counts_bytes_of_an_unfinished_packet(size: int, seed: int, data: st.DataObject) -> None:
    stream = encoded(0, random_bytes(size, seed)) * 2
    cut = data.draw(st.integers(1, len(stream) - 1))
    decoder = dt.PacketDecoder(BPC)

    first_half = list(decoder.feed(stream[:cut]))

    boundary = len(stream) // 2
    if cut == boundary:
        assert len(first_half) == 1
        assert decoder.pending == 0
    else:
        assert len(first_half) == (1 if cut > boundary else 0)
        assert decoder.pending == cut - (boundary if cut > boundary else 0)
        assert decoder.pending > 0
    rest = list(decoder.feed(stream[cut:]))
    assert len(first_half) + len(rest) == 2
    assert decoder.pending == 0


def test_pending_starts_at_zero() -> None:
    assert dt.PacketDecoder(BPC).pending == 0


def test_a_header_alone_is_pending() -> None:
    decoder = dt.PacketDecoder(BPC)
    assert list(decoder.feed(raw_header(data_len=10, ck_len=8))) == []
    assert decoder.pending == 24


# --- decoding: malformed input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "match"),
    [
        pytest.param(raw_header(magic=b"DFSQ"), "magic", id="bad-magic"),
        pytest.param(raw_header(magic=b"HTTP"), "magic", id="http-text"),
        pytest.param(raw_header(version=0), "version", id="version-0"),
        pytest.param(raw_header(version=2), "version", id="version-2"),
        pytest.param(raw_header(data_len=1000, ck_len=8), "checksum", id="too-few-checksums"),
        pytest.param(raw_header(data_len=1000, ck_len=24), "checksum", id="too-many-checksums"),
        pytest.param(raw_header(data_len=0, ck_len=8), "checksum", id="checksums-without-data"),
        pytest.param(raw_header(data_len=512, ck_len=7), "checksum", id="partial-digest"),
        pytest.param(raw_header(flags=dt.FLAG_ERROR, data_len=10, ck_len=8), "error packet", id="error-with-checksums"),
    ],
)
def test_decoder_rejects_bad_headers(header: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        list(dt.PacketDecoder(BPC).feed(header))


def test_decoder_rejects_a_bad_header_before_its_body_arrives() -> None:
    """A hostile header must fail at once, not after the decoder buffered what it announced."""
    decoder = dt.PacketDecoder(BPC)
    with pytest.raises(ProtocolError):
        list(decoder.feed(raw_header(magic=b"JUNK", data_len=10**6)))


def test_decoder_rejects_data_length_over_max_data() -> None:
    decoder = dt.PacketDecoder(BPC, max_data=4096)
    digests = bytes(8 * 9)  # consistent with 4097 bytes, so only the size is wrong
    with pytest.raises(ProtocolError, match="4097"):
        list(decoder.feed(raw_header(data_len=4097, ck_len=len(digests)) + digests))


def test_decoder_accepts_data_length_equal_to_max_data() -> None:
    data = random_bytes(4096, seed=6)
    (packet,) = dt.PacketDecoder(BPC, max_data=4096).feed(encoded(0, data))
    assert bytes(packet.data) == data


def test_default_max_data_refuses_a_huge_announcement() -> None:
    data_len = dt.MAX_PACKET_DATA + 1
    header = raw_header(data_len=data_len, ck_len=8 * -(-data_len // BPC))
    with pytest.raises(ProtocolError, match="more than"):
        list(dt.PacketDecoder(BPC).feed(header))


def test_error_packet_over_max_data_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        list(dt.PacketDecoder(BPC, max_data=100).feed(raw_header(flags=dt.FLAG_ERROR, data_len=101)))


def test_bad_packet_after_good_ones_still_yields_the_good_ones() -> None:
    good = encoded(0, random_bytes(600, seed=7))
    decoder = dt.PacketDecoder(BPC)
    received: list[dt.Packet] = []
    with pytest.raises(ProtocolError):
        received.extend(decoder.feed(good + raw_header(magic=b"JUNK")))
    assert len(received) == 1
    assert received[0].raw == good


def test_decoder_checks_digest_length_against_its_own_bytes_per_checksum() -> None:
    stream = encoded(0, random_bytes(2048, seed=8), bpc=1024)  # 2 digests
    with pytest.raises(ProtocolError, match="checksum"):
        list(dt.PacketDecoder(512).feed(stream))  # expects 4


# --- error packets ----------------------------------------------------------------------------

error_bodies = st.builds(
    ErrorBody,
    code=st.sampled_from(list(ErrorCode)),
    errno=st.integers(0, 200),
    message=st.text(max_size=300),
    path=st.none() | st.text(max_size=100),
)


@given(error_bodies, st.lists(st.integers(0, 2000), max_size=10))
def test_error_packet_round_trip(body: ErrorBody, cuts: list[int]) -> None:
    raw = dt.encode_error_packet(body)
    decoder = dt.PacketDecoder(BPC)

    (packet,) = decode_all(decoder, split_at(raw, cuts))

    assert packet.is_error
    assert packet.flags & dt.FLAG_ERROR
    assert len(packet.digests) == 0
    assert packet.raw == raw
    assert packet.error_body() == body
    assert decoder.pending == 0


def test_error_packet_after_data_packets() -> None:
    body = ErrorBody(code=ErrorCode.CHECKSUM_MISMATCH, errno=5, message="disk rot", path="/f")
    stream = encoded(0, random_bytes(1000, seed=9)) + dt.encode_error_packet(body)
    first, second = dt.PacketDecoder(BPC).feed(stream)
    assert not first.is_error
    assert second.is_error
    assert second.error_body() == body


def test_unreadable_error_packet_raises_protocol_error() -> None:
    junk = b"not json"
    raw = dt.encode_packet_prefix(0, len(junk), b"", dt.FLAG_ERROR) + junk
    (packet,) = dt.PacketDecoder(BPC).feed(raw)
    with pytest.raises(ProtocolError, match="unreadable error packet"):
        packet.error_body()


def test_error_packet_with_unknown_code_raises_protocol_error() -> None:
    junk = json.dumps({"code": "NOPE", "errno": 1, "message": "x"}).encode()
    raw = dt.encode_packet_prefix(0, len(junk), b"", dt.FLAG_ERROR) + junk
    (packet,) = dt.PacketDecoder(BPC).feed(raw)
    with pytest.raises(ProtocolError):
        packet.error_body()


# --- header models ----------------------------------------------------------------------------


def ref(index: int) -> DatanodeRef:
    return DatanodeRef(id=f"dn-{index}", url=f"http://10.0.0.{index % 250}:9866")


def write_header(**overrides: object) -> dt.WriteBlockHeader:
    fields: dict[str, object] = {"block_id": 1, "gen_stamp": 1, "stage": "create"}
    fields.update(overrides)
    return dt.WriteBlockHeader.model_validate(fields)


def test_write_block_header_defaults() -> None:
    header = write_header()
    assert header.stage is dt.WriteStage.CREATE
    assert header.offset == 0
    assert header.final is True
    assert header.bytes_per_checksum == 64 * 1024
    assert header.downstream == []
    assert header.previous_gen_stamp is None


def test_write_block_header_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        write_header(block_idd=2)


@pytest.mark.parametrize("block_id", [0, -1, 2**63])
def test_write_block_header_rejects_out_of_range_block_ids(block_id: int) -> None:
    with pytest.raises(ValidationError):
        write_header(block_id=block_id)


@pytest.mark.parametrize(
    "overrides",
    [
        {"gen_stamp": 0},
        {"offset": -1},
        {"stage": "append"},
        {"bytes_per_checksum": 256},
        {"bytes_per_checksum": 32 * 1024 * 1024},
        {"previous_gen_stamp": 0},
        {"client_name": "x" * 257},
        {"downstream": [{"id": "dn 1", "url": "http://a:1"}]},
        {"downstream": [{"id": "dn-1", "url": "ftp://a:1"}]},
        {"downstream": [{"id": "dn-1", "url": "http://a:1", "port": 1}]},
    ],
    ids=repr,
)
def test_write_block_header_rejects_invalid_fields(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        write_header(**overrides)


def test_pipeline_of_16_is_accepted_and_17_is_refused() -> None:
    assert len(write_header(downstream=[ref(i) for i in range(16)]).downstream) == 16
    with pytest.raises(ValidationError):
        write_header(downstream=[ref(i) for i in range(17)])


def test_write_block_header_is_frozen() -> None:
    header = write_header()
    with pytest.raises(ValidationError):
        header.block_id = 2  # type: ignore[misc]


write_headers = st.builds(
    dt.WriteBlockHeader,
    block_id=st.integers(1, 2**63 - 1),
    gen_stamp=st.integers(1, 2**63 - 1),
    stage=st.sampled_from(list(dt.WriteStage)),
    offset=st.integers(0, 2**63 - 1),
    final=st.booleans(),
    bytes_per_checksum=st.sampled_from([2**n for n in range(9, 25)]),
    downstream=st.lists(st.integers(0, 1000).map(ref), max_size=16),
    previous_gen_stamp=st.none() | st.integers(1, 2**63 - 1),
    client_name=st.text(max_size=256),
)


@given(write_headers)
def test_encode_header_model_round_trips_as_ascii_json(header: dt.WriteBlockHeader) -> None:
    text = dt.encode_header_model(header)
    assert text.isascii(), "HTTP header values must be ASCII"
    assert "\n" not in text and "\r" not in text
    assert dt.WriteBlockHeader.model_validate_json(text) == header


def test_encode_header_model_escapes_non_ascii_client_names() -> None:
    header = write_header(client_name="клиент-名前-é")
    text = dt.encode_header_model(header)
    assert text.isascii()
    assert dt.WriteBlockHeader.model_validate_json(text).client_name == "клиент-名前-é"


def test_read_block_header_round_trip() -> None:
    header = dt.ReadBlockHeader(
        block_id=9, gen_stamp=3, replica_length=10_000, offset=4096, length=5904, bytes_per_checksum=4096
    )
    assert dt.ReadBlockHeader.model_validate_json(dt.encode_header_model(header)) == header


def test_write_block_response_round_trip_with_a_failed_node() -> None:
    error = ErrorBody(code=ErrorCode.NO_SPACE, errno=28, message="volume full")
    response = dt.WriteBlockResponse(
        block_id=5,
        gen_stamp=2,
        length=1024,
        final=True,
        nodes=[
            dt.NodeAck(datanode_id="dn-1", url="http://a:1", ok=True, length=1024),
            dt.NodeAck(datanode_id="dn-2", url="http://b:1", ok=False, error=error),
        ],
    )
    decoded = dt.WriteBlockResponse.model_validate_json(response.model_dump_json())
    assert decoded == response
    assert decoded.nodes[1].error == error


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://dn:9866", "http://dn:9866/v1/blocks/42"),
        ("http://dn:9866/", "http://dn:9866/v1/blocks/42"),
        ("http://dn:9866/prefix/", "http://dn:9866/prefix/v1/blocks/42"),
    ],
)
def test_block_url(base: str, expected: str) -> None:
    assert dt.block_url(base, 42) == expected


@pytest.mark.parametrize("bytes_per_checksum", [0, 511, 513, 1000, 3 * 1024, 32 * 1024 * 1024])
def test_write_header_refuses_chunk_sizes_that_are_not_powers_of_two(bytes_per_checksum: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        dt.WriteBlockHeader(block_id=1, gen_stamp=1, stage=dt.WriteStage.CREATE, bytes_per_checksum=bytes_per_checksum)
