"""Chunk checksums, the meta file header and the replica file layout."""

from __future__ import annotations

import random
import re
import struct

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from client.protocol import block_format as bf
from client.protocol.errors import ChecksumMismatchError

POWERS_OF_TWO_512_TO_64K = [2**exp for exp in range(9, 17)]
ALL_VALID_BYTES_PER_CHECKSUM = [2**exp for exp in range(9, 25)]


def random_bytes(size: int, seed: int) -> bytes:
    """Reproducible pseudo-random data (much cheaper than drawing large binaries from hypothesis)."""
    return random.Random(seed).randbytes(size)


def flip(data: bytes, position: int, mask: int = 0xFF) -> bytes:
    corrupted = bytearray(data)
    corrupted[position] ^= mask
    return bytes(corrupted)


def mismatch_offset(exc: ChecksumMismatchError) -> int:
    """The block offset a checksum-mismatch message points at."""
    found = re.search(r"block offset (\d+)", exc.message)
    assert found, f"message names no block offset: {exc.message!r}"
    return int(found.group(1))


# --- chunk_count ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "bpc", "expected"),
    [(0, 512, 0), (1, 512, 1), (511, 512, 1), (512, 512, 1), (513, 512, 2), (1024, 512, 2), (65537, 65536, 2)],
)
def test_chunk_count_examples(length: int, bpc: int, expected: int) -> None:
    assert bf.chunk_count(length, bpc) == expected


@given(st.integers(0, 2**40), st.sampled_from(ALL_VALID_BYTES_PER_CHECKSUM))
def test_chunk_count_is_the_ceiling_division(length: int, bpc: int) -> None:
    count = bf.chunk_count(length, bpc)
    assert count * bpc >= length
    assert (count - 1) * bpc < length or count == 0


# --- chunk_digests ----------------------------------------------------------------------------


@settings(max_examples=150)
@given(st.integers(0, 300_000), st.sampled_from(POWERS_OF_TWO_512_TO_64K), st.integers(0, 2**32))
def test_chunk_digests_has_one_digest_per_chunk(size: int, bpc: int, seed: int) -> None:
    data = random_bytes(size, seed)
    digests = bf.chunk_digests(data, bpc)
    assert len(digests) == bf.chunk_count(size, bpc) * bf.DIGEST_SIZE
    assert bf.chunk_digests(data, bpc) == digests, "digests must be deterministic"
    assert bf.chunk_digests(bytearray(data), bpc) == digests
    assert bf.chunk_digests(memoryview(data), bpc) == digests


def test_chunk_digests_are_big_endian_xxh3_64_of_each_chunk() -> None:
    data = random_bytes(1300, seed=7)
    digests = bf.chunk_digests(data, 512)
    chunks = [data[0:512], data[512:1024], data[1024:1300]]
    expected = b"".join(xxhash.xxh3_64_intdigest(chunk).to_bytes(8, "big") for chunk in chunks)
    assert digests == expected


def test_chunk_digests_of_empty_data_is_empty() -> None:
    assert bf.chunk_digests(b"", 512) == b""


def test_digest_of_a_chunk_does_not_depend_on_its_neighbours() -> None:
    """Chunks are hashed independently, so a DataNode can verify any aligned range."""
    data = random_bytes(4 * 512, seed=1)
    whole = bf.chunk_digests(data, 512)
    assert bf.chunk_digests(data[1024:1536], 512) == whole[16:24]
    assert bf.chunk_digests(flip(data, 0), 512)[8:] == whole[8:]


# --- verify_chunks ----------------------------------------------------------------------------


@settings(max_examples=150)
@given(
    st.integers(0, 300_000),
    st.sampled_from(POWERS_OF_TWO_512_TO_64K),
    st.integers(0, 2**32),
    st.integers(0, 1000),
)
def test_verify_chunks_accepts_intact_data(size: int, bpc: int, seed: int, offset_chunks: int) -> None:
    data = random_bytes(size, seed)
    digests = bf.chunk_digests(data, bpc)
    bf.verify_chunks(data, digests, bpc, block_offset=offset_chunks * bpc)
    bf.verify_chunks(memoryview(data), memoryview(digests), bpc)
    bf.verify_chunks(bytearray(data), bytearray(digests), bpc)


@settings(max_examples=200)
@given(
    st.integers(1, 300_000),
    st.sampled_from(POWERS_OF_TWO_512_TO_64K),
    st.integers(0, 2**32),
    st.integers(1, 255),
    st.integers(0, 1000),
    st.data(),
)
def test_verify_chunks_names_the_chunk_holding_a_flipped_byte(
    size: int, bpc: int, seed: int, mask: int, offset_chunks: int, data_strategy: st.DataObject
) -> None:
    data = random_bytes(size, seed)
    digests = bf.chunk_digests(data, bpc)
    position = data_strategy.draw(st.integers(0, size - 1), label="flipped byte")
    block_offset = offset_chunks * bpc

    with pytest.raises(ChecksumMismatchError) as excinfo:
        bf.verify_chunks(flip(data, position, mask), digests, bpc, block_offset=block_offset)
    assert mismatch_offset(excinfo.value) == block_offset + (position // bpc) * bpc


@settings(max_examples=100)
@given(st.integers(2, 64), st.sampled_from([512, 1024, 4096]), st.integers(0, 2**32), st.data())
def test_verify_chunks_names_the_first_of_several_bad_chunks(
    chunks: int, bpc: int, seed: int, data_strategy: st.DataObject
) -> None:
    data = random_bytes(chunks * bpc, seed)
    digests = bf.chunk_digests(data, bpc)
    first, second = sorted(
        data_strategy.draw(st.lists(st.integers(0, chunks - 1), min_size=2, max_size=2, unique=True))
    )
    corrupted = flip(flip(data, second * bpc + 3), first * bpc + bpc - 1)

    with pytest.raises(ChecksumMismatchError) as excinfo:
        bf.verify_chunks(corrupted, digests, bpc)
    assert mismatch_offset(excinfo.value) == first * bpc


def test_verify_chunks_detects_a_corrupted_digest() -> None:
    data = random_bytes(3000, seed=3)
    digests = bf.chunk_digests(data, 1024)
    with pytest.raises(ChecksumMismatchError) as excinfo:
        bf.verify_chunks(data, flip(digests, 8 + 5), 1024, block_offset=8192)
    assert mismatch_offset(excinfo.value) == 8192 + 1024


def test_verify_chunks_detects_a_short_last_chunk_change() -> None:
    data = random_bytes(1000, seed=4)
    digests = bf.chunk_digests(data, 512)
    with pytest.raises(ChecksumMismatchError):
        bf.verify_chunks(flip(data, len(data) - 1), digests, 512)


def test_verify_chunks_message_names_what_was_checked() -> None:
    data = random_bytes(600, seed=5)
    digests = bf.chunk_digests(data, 512)
    with pytest.raises(ChecksumMismatchError, match=r"^packet from dn-3"):
        bf.verify_chunks(flip(data, 0), digests, 512, what="packet from dn-3")


@pytest.mark.parametrize(
    ("size", "delta"),
    [(0, 1), (0, 8), (1, -8), (1, -1), (1, 1), (1, 8), (512, -1), (512, 8), (1500, -8), (1500, -1), (1500, 8)],
)
def test_verify_chunks_rejects_a_wrong_digest_length(size: int, delta: int) -> None:
    data = random_bytes(size, seed=size)
    digests = bf.chunk_digests(data, 512)
    wrong = digests + b"\x00" * delta if delta > 0 else digests[:delta]
    with pytest.raises(ChecksumMismatchError, match="checksum bytes"):
        bf.verify_chunks(data, wrong, 512)


def test_verify_chunks_rejects_data_length_that_does_not_match_digests() -> None:
    """Data grown by one byte needs one more chunk, so the old digests are too short."""
    data = random_bytes(1024, seed=6)
    digests = bf.chunk_digests(data, 512)
    with pytest.raises(ChecksumMismatchError):
        bf.verify_chunks(data + b"x", digests, 512)
    with pytest.raises(ChecksumMismatchError):
        bf.verify_chunks(data[:512], digests, 512)


# --- validate_bytes_per_checksum --------------------------------------------------------------


@pytest.mark.parametrize("bpc", ALL_VALID_BYTES_PER_CHECKSUM)
def test_valid_bytes_per_checksum(bpc: int) -> None:
    assert bf.validate_bytes_per_checksum(bpc) == bpc


@pytest.mark.parametrize("bpc", [0, -512, 1, 256, 511, 513, 1000, 3 * 1024, 65535, 32 * 1024 * 1024])
def test_invalid_bytes_per_checksum(bpc: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        bf.validate_bytes_per_checksum(bpc)


# --- meta header ------------------------------------------------------------------------------


@pytest.mark.parametrize("bpc", ALL_VALID_BYTES_PER_CHECKSUM)
def test_meta_header_round_trip(bpc: int) -> None:
    raw = bf.encode_meta_header(bpc)
    assert len(raw) == bf.META_HEADER_SIZE == 16
    assert raw.startswith(b"DFSM")
    header = bf.decode_meta_header(raw)
    assert header == bf.MetaHeader(bf.META_VERSION, bf.ChecksumAlgorithm.XXH3_64, bpc)
    assert header.algorithm is bf.ChecksumAlgorithm.XXH3_64


def test_meta_header_layout_is_little_endian_with_zero_reserved_bytes() -> None:
    """The layout is on disk: changing it silently would orphan every existing replica."""
    raw = bf.encode_meta_header(65536)
    assert raw == b"DFSM" + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (65536).to_bytes(
        4, "little"
    ) + bytes(4)


def test_decode_meta_header_ignores_what_follows_the_header() -> None:
    data = random_bytes(2000, seed=8)
    meta = bf.encode_meta_header(1024) + bf.chunk_digests(data, 1024)
    assert bf.decode_meta_header(meta).bytes_per_checksum == 1024


@pytest.mark.parametrize("bpc", [0, 100, 511, 1000, 32 * 1024 * 1024])
def test_encode_meta_header_rejects_invalid_bytes_per_checksum(bpc: int) -> None:
    with pytest.raises(ValueError):
        bf.encode_meta_header(bpc)


def raw_header(magic: bytes = b"DFSM", version: int = 1, algorithm: int = 1, bpc: int = 65536) -> bytes:
    return struct.pack("<4sHHI4x", magic, version, algorithm, bpc)


def test_raw_header_helper_matches_the_encoder() -> None:
    assert raw_header() == bf.encode_meta_header(65536)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        pytest.param(raw_header(magic=b"DFSX"), "magic", id="bad-magic"),
        pytest.param(raw_header(magic=b"\x00\x00\x00\x00"), "magic", id="zero-magic"),
        pytest.param(raw_header(version=0), "version", id="version-0"),
        pytest.param(raw_header(version=2), "version", id="version-2"),
        pytest.param(raw_header(algorithm=0), "invalid", id="algorithm-0"),
        pytest.param(raw_header(algorithm=2), "invalid", id="algorithm-2"),
        pytest.param(raw_header(bpc=1000), "invalid", id="bpc-not-power-of-two"),
        pytest.param(raw_header(bpc=256), "invalid", id="bpc-too-small"),
        pytest.param(raw_header(bpc=0), "invalid", id="bpc-zero"),
        pytest.param(raw_header(bpc=32 * 1024 * 1024), "invalid", id="bpc-too-large"),
        pytest.param(bytes(16), "magic", id="all-zero"),
        *(
            pytest.param(raw_header()[:i] + b"\x01" + raw_header()[i + 1 :], "reserved", id=f"reserved-byte-{i}")
            for i in range(12, 16)
        ),
    ],
)
def test_decode_meta_header_rejects_damaged_headers(raw: bytes, match: str) -> None:
    with pytest.raises(ChecksumMismatchError, match=match):
        bf.decode_meta_header(raw)


@pytest.mark.parametrize("length", range(16))
def test_decode_meta_header_rejects_short_input(length: int) -> None:
    with pytest.raises(ChecksumMismatchError, match="shorter"):
        bf.decode_meta_header(bf.encode_meta_header(512)[:length])


@given(st.binary(min_size=16, max_size=32))
def test_decode_meta_header_raises_only_checksum_mismatch_on_garbage(raw: bytes) -> None:
    """Whatever is on disk, a damaged header must read as corruption, never crash differently."""
    try:
        header = bf.decode_meta_header(raw)
    except ChecksumMismatchError:
        return
    assert raw[:4] == b"DFSM"
    assert bf.encode_meta_header(header.bytes_per_checksum, header.algorithm) == raw[:12] + bytes(4)


# --- meta_file_size ---------------------------------------------------------------------------


@given(st.integers(0, 300_000), st.sampled_from(POWERS_OF_TWO_512_TO_64K))
def test_meta_file_size_matches_a_real_meta_file(length: int, bpc: int) -> None:
    meta = bf.encode_meta_header(bpc) + bf.chunk_digests(bytes(length), bpc)
    assert bf.meta_file_size(length, bpc) == len(meta)


@pytest.mark.parametrize(
    ("length", "bpc", "expected"), [(0, 512, 16), (1, 512, 24), (512, 512, 24), (513, 512, 32), (2**27, 2**16, 16400)]
)
def test_meta_file_size_examples(length: int, bpc: int, expected: int) -> None:
    assert bf.meta_file_size(length, bpc) == expected


# --- file names -------------------------------------------------------------------------------

int64 = st.integers(1, 2**63 - 1)


def test_file_name_examples() -> None:
    assert bf.block_file_name(42) == "blk_42"
    assert bf.meta_file_name(42, 7) == "blk_42_7.meta"


@given(int64, int64)
def test_meta_file_name_round_trip(block_id: int, gen_stamp: int) -> None:
    name = bf.meta_file_name(block_id, gen_stamp)
    assert name.startswith(bf.block_file_name(block_id) + "_")
    assert bf.parse_meta_file_name(name) == (block_id, gen_stamp)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "blk_",
        "blk_1",  # a data file, not a meta file
        "blk_1.meta",
        "blk_1_.meta",
        "blk__1.meta",
        "blk_1_2",
        "blk_1_2.meta.tmp",
        "blk_1_2.meta~",
        "blk_a_2.meta",
        "blk_1_b.meta",
        "blk_1_2_3.meta",
        "blk_-1_2.meta",
        "blk_1_-2.meta",
        "blk_+1_2.meta",
        "blk_ 1_2.meta",
        "blk_1.5_2.meta",
        "BLK_1_2.meta",
        "xblk_1_2.meta",
        "blk_1_2.META",
        ".meta",
        "blk_.meta",
        "VERSION",
        "subdir0",
    ],
)
def test_parse_meta_file_name_rejects_junk(name: str) -> None:
    assert bf.parse_meta_file_name(name) is None


@given(st.text(alphabet="0123456789_-+ .ab", max_size=20))
def test_parse_meta_file_name_accepts_exactly_canonical_names(core: str) -> None:
    """A DataNode indexes every name in its directories: a stray file must be skipped, never crash the scan.

    Only what meta_file_name produces parses: positive ids, ASCII digits, no leading zeros.
    """
    parsed = bf.parse_meta_file_name("blk_" + core + ".meta")
    if re.fullmatch(r"[1-9][0-9]*_[1-9][0-9]*", core):
        block_text, gen_text = core.split("_")
        assert parsed == (int(block_text), int(gen_text))
    else:
        assert parsed is None


@pytest.mark.parametrize("name", ["blk_²_1.meta", "blk_1_³.meta", "blk_①_1.meta"])
def test_parse_meta_file_name_rejects_superscript_digits(name: str) -> None:
    assert bf.parse_meta_file_name(name) is None


@pytest.mark.parametrize("name", ["blk_\u0661_1.meta", "blk_1_\u0661.meta", "blk_\uff11_1.meta"])
def test_parse_meta_file_name_rejects_non_ascii_decimal_digits(name: str) -> None:
    assert bf.parse_meta_file_name(name) is None


# --- finalized_subdir -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block_id", "expected"),
    [
        (0, "subdir0/subdir0"),
        (1, "subdir0/subdir0"),
        (255, "subdir0/subdir0"),
        (256, "subdir0/subdir1"),
        (0x1F00, "subdir0/subdir31"),
        (0x2000, "subdir0/subdir0"),
        (0x10000, "subdir1/subdir0"),
        (0x1F1F00, "subdir31/subdir31"),
        (0x200000, "subdir0/subdir0"),
        ((3 << 16) | (5 << 8) | 0xAB, "subdir3/subdir5"),
    ],
)
def test_finalized_subdir_examples(block_id: int, expected: str) -> None:
    assert bf.finalized_subdir(block_id) == expected


@given(st.integers(0, 2**63 - 1))
def test_finalized_subdir_is_a_two_level_32_by_32_layout(block_id: int) -> None:
    found = re.fullmatch(r"subdir(\d+)/subdir(\d+)", bf.finalized_subdir(block_id))
    assert found
    outer, inner = int(found.group(1)), int(found.group(2))
    assert 0 <= outer < 32 and 0 <= inner < 32
    assert (outer, inner) == ((block_id >> 16) % 32, (block_id >> 8) % 32)
    assert bf.finalized_subdir(block_id) == bf.finalized_subdir(block_id ^ (block_id & 0xFF)), "low byte is ignored"
