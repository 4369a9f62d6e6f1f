"""Hadoop's MD5-of-MD5-of-CRC32C file checksum: known values, and incremental == plain reference."""

from __future__ import annotations

import hashlib
import itertools
import random
import struct
from collections.abc import Iterator

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.protocol import hadoop_checksum as hc
from client.protocol.data_transfer import BLOCK_CHECKSUM_ROUTE, block_checksum_url

MIB = 1024 * 1024
HADOOP_BLOCK = 128 * MIB


def zeros(total: int, piece: int) -> Iterator[bytes]:
    """`total` zero bytes in pieces, without holding them all in memory."""
    buffer = bytes(piece)
    while total > 0:
        yield buffer[: min(piece, total)]
        total -= piece


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# --- the reference, written plainly ---------------------------------------------------------


def reference_block_md5(block: bytes, bytes_per_crc: int) -> bytes:
    crcs = b""
    for start in range(0, len(block), bytes_per_crc):
        crcs += struct.pack(">I", crc32c.crc32c(block[start : start + bytes_per_crc]))
    return hashlib.md5(crcs).digest()


def reference_file_checksum(data: bytes, block_size: int, bytes_per_crc: int = 512) -> tuple[str, str]:
    """(algorithm, WebHDFS "bytes" hex) for `data` stored in blocks of `block_size`."""
    blocks = [data[start : start + block_size] for start in range(0, len(data), block_size)]
    if not blocks:
        md5 = hashlib.md5(bytes(32)).digest()
        return "MD5-of-0MD5-of-0CRC32", (struct.pack(">iq", 0, 0) + md5 + bytes(4)).hex()
    concatenated = b"".join(reference_block_md5(block, bytes_per_crc) for block in blocks)
    # Hadoop digests DataOutputBuffer.getData(): the whole backing array, 32 bytes doubling.
    capacity = 32
    while capacity < len(concatenated):
        capacity *= 2
    file_md5 = hashlib.md5(concatenated + bytes(capacity - len(concatenated))).digest()
    crc_per_block = -(-len(blocks[0]) // bytes_per_crc) if len(blocks) > 1 else 0
    serialised = struct.pack(">iq", bytes_per_crc, crc_per_block) + file_md5
    return f"MD5-of-{crc_per_block}MD5-of-{bytes_per_crc}CRC32C", (serialised + bytes(4)).hex()


# --- known values -----------------------------------------------------------------------------


def test_empty_file_is_hadoops_magic_value() -> None:
    # Hadoop's own TestDistributedFileSystem (HDFS-4090) asserts this for zero-byte files.
    assert hc.file_checksum_of([], HADOOP_BLOCK) == hc.EMPTY_FILE_CHECKSUM
    assert hc.compose_file_checksum([]) == hc.EMPTY_FILE_CHECKSUM
    checksum = hc.EMPTY_FILE_CHECKSUM
    assert f"{checksum.algorithm}:{checksum.md5}" == "MD5-of-0MD5-of-0CRC32:70bc8f4b72a86921468bf8e8441dce51"


# Values asserted (as Hadoop's own MD5MD5CRC32CastagnoliFileChecksum objects) by the
# Hadoop-compatible JuiceFS Java SDK test suite (juicedata/juicefs,
# sdk/java/src/test/java/io/juicefs/JuiceFileSystemTest.java, testChecksum), 128 MiB blocks.
@pytest.mark.parametrize(
    ("content", "algorithm", "md5"),
    [
        (b"world\n", "MD5-of-0MD5-of-512CRC32C", "a74dcf6d5ba98e50ae0182c9d5d886fe"),
        (b"world", "MD5-of-0MD5-of-512CRC32C", "05a157db1cc7549c82ec6f31f63fdb46"),
    ],
)
def test_small_files_match_known_hadoop_values(content: bytes, algorithm: str, md5: str) -> None:
    checksum = hc.file_checksum_of([content], HADOOP_BLOCK)
    assert (checksum.algorithm, checksum.md5) == (algorithm, md5)
    assert checksum.bytes == "00000200" + "0000000000000000" + md5 + "00000000"


def test_one_full_block_of_zeros_matches_known_hadoop_value() -> None:
    checksum = hc.file_checksum_of(zeros(HADOOP_BLOCK - 1, MIB), HADOOP_BLOCK)
    assert checksum.algorithm == "MD5-of-0MD5-of-512CRC32C"
    assert checksum.md5 == "1cf326bae8274fd824ec69ece3e4082f"


def test_two_blocks_of_zeros_match_known_hadoop_value() -> None:
    checksum = hc.file_checksum_of(zeros(150 * 1024 * 1000, 1024 * 1000), HADOOP_BLOCK)
    assert checksum.algorithm == "MD5-of-262144MD5-of-512CRC32C"
    assert checksum.md5 == "7d04ac8132ad64988f7ba4d819cbde62"
    assert checksum.raw == struct.pack(">iq", 512, 262144) + bytes.fromhex("7d04ac8132ad64988f7ba4d819cbde62")


def test_webhdfs_rendering_matches_a_real_hadoop_answer() -> None:
    # A GETFILECHECKSUM answer logged by a Go WebHDFS client against a real cluster: 32 bytes
    # of hex (Java's padded buffer) while "length" says 28.
    md5 = bytes.fromhex("78cbe5985d4a6991c863e26618b7e983")
    checksum = hc.make_file_checksum("MD5-of-0MD5-of-512CRC32C", 512, 0, md5)
    assert checksum.model_dump() == {
        "algorithm": "MD5-of-0MD5-of-512CRC32C",
        "bytes": "00000200000000000000000078cbe5985d4a6991c863e26618b7e98300000000",
        "length": 28,
    }
    assert len(checksum.raw) == hc.CHECKSUM_LENGTH == 28
    assert checksum.md5 == md5.hex()


# --- crcPerBlock and the file MD5 ---------------------------------------------------------------


def test_crc_per_block_is_zero_for_a_single_block() -> None:
    assert hc.file_checksum_of([bytes(MIB)], MIB).algorithm == "MD5-of-0MD5-of-512CRC32C"


def test_crc_per_block_counts_the_first_block_of_several() -> None:
    assert hc.file_checksum_of([bytes(MIB + 1)], MIB).algorithm == "MD5-of-2048MD5-of-512CRC32C"
    # A short first block (e.g. after an append started a new one) counts its own CRCs.
    short_first = [hc.BlockChecksum(b"\1" * 16, 3), hc.BlockChecksum(b"\2" * 16, 2048)]
    assert hc.crc_per_block(short_first) == 3
    assert hc.compose_file_checksum(short_first).algorithm == "MD5-of-3MD5-of-512CRC32C"


@pytest.mark.parametrize(
    ("written", "capacity"), [(0, 32), (16, 32), (32, 32), (33, 64), (48, 64), (64, 64), (80, 128), (1040, 2048)]
)
def test_java_buffer_capacity_doubles_from_32(written: int, capacity: int) -> None:
    assert hc.java_buffer_capacity(written) == capacity
    assert len(hc.java_buffer_data(bytes(written))) == capacity


def test_file_md5_pads_the_block_md5s_like_hadoop() -> None:
    one, two, three = b"\1" * 16, b"\2" * 16, b"\3" * 16
    assert hc.file_md5([one]) == hashlib.md5(one + bytes(16)).digest()
    assert hc.file_md5([one, two]) == hashlib.md5(one + two).digest()
    assert hc.file_md5([one, two, three]) == hashlib.md5(one + two + three + bytes(16)).digest()


def test_encode_checksum_is_int_long_md5_big_endian() -> None:
    raw = hc.encode_checksum(512, 262144, bytes(range(16)))
    assert raw == bytes.fromhex("000002000000000000040000") + bytes(range(16))
    with pytest.raises(ValueError):
        hc.encode_checksum(512, 0, b"short")


# --- the incremental block digest -----------------------------------------------------------------


def test_empty_block_digests_no_crcs() -> None:
    assert hc.block_checksum([]) == hc.BlockChecksum(hashlib.md5(b"").digest(), 0)
    assert hc.block_checksum([b"", memoryview(b"")]) == hc.BlockChecksum(hashlib.md5(b"").digest(), 0)


def test_short_last_chunk_gets_its_own_crc() -> None:
    data = random_bytes(512 * 3 + 1, seed=1)
    digest = hc.block_checksum([data])
    assert digest.crc_count == 4
    assert digest.md5 == reference_block_md5(data, 512)


def test_digest_refuses_updates_after_finish() -> None:
    digest = hc.BlockMd5Crc()
    digest.update(b"abc")
    first = digest.finish()
    assert digest.finish() == first
    with pytest.raises(ValueError):
        digest.update(b"more")
    with pytest.raises(ValueError):
        hc.BlockMd5Crc(0)


@settings(max_examples=200)
@given(
    size=st.integers(0, 300_000),
    seed=st.integers(0, 2**32),
    cuts=st.lists(st.integers(0, 300_000), max_size=12),
    bytes_per_crc=st.sampled_from([1, 7, 512, 4096, 65536, 131072]),
)
def test_incremental_equals_reference_for_any_split(size: int, seed: int, cuts: list[int], bytes_per_crc: int) -> None:
    if bytes_per_crc < 64:
        size = min(size, 4000)  # one CRC call per byte: keep the example quick
    data = random_bytes(size, seed)
    bounds = sorted({0, size, *(cut % (size + 1) for cut in cuts)})
    view = memoryview(data)
    pieces = [view[a:b] for a, b in itertools.pairwise(bounds)]
    digest = hc.block_checksum(pieces, bytes_per_crc)
    assert digest.md5 == reference_block_md5(data, bytes_per_crc)
    assert digest.crc_count == -(-size // bytes_per_crc)


@settings(max_examples=100)
@given(
    size=st.integers(0, 40_000),
    seed=st.integers(0, 2**32),
    block_size=st.sampled_from([512, 1024, 3000, 4096, 10_000, 65536]),
    piece=st.integers(1, 9000),
)
def test_file_checksum_equals_reference(size: int, seed: int, block_size: int, piece: int) -> None:
    data = random_bytes(size, seed)
    pieces = [data[start : start + piece] for start in range(0, size, piece)]
    checksum = hc.file_checksum_of(pieces, block_size)
    assert (checksum.algorithm, checksum.bytes) == reference_file_checksum(data, block_size)
    assert checksum.length == 28


def test_file_checksum_rejects_a_non_positive_block_size() -> None:
    with pytest.raises(ValueError):
        hc.file_checksum_of([b"x"], 0)


def test_equal_bytes_give_equal_checksums_and_different_bytes_differ() -> None:
    data = random_bytes(3 * 4096 + 100, seed=7)
    assert hc.file_checksum_of([data], 4096) == hc.file_checksum_of([data[:5000], data[5000:]], 4096)
    changed = bytearray(data)
    changed[4096 * 2 + 3] ^= 1
    assert hc.file_checksum_of([bytes(changed)], 4096) != hc.file_checksum_of([data], 4096)
    # The same bytes in other blocks are another checksum (as in Hadoop).
    assert hc.file_checksum_of([data], 8192) != hc.file_checksum_of([data], 4096)


def test_file_checksum_model_validates_its_hex() -> None:
    with pytest.raises(ValueError):
        hc.FileChecksum(algorithm="x", bytes="XYZ", length=28)


# --- the DataNode route ----------------------------------------------------------------------------


def test_block_checksum_url() -> None:
    assert BLOCK_CHECKSUM_ROUTE == "/v1/blocks/{block_id}/checksum"
    assert block_checksum_url("http://dn:1/", 42) == "http://dn:1/v1/blocks/42/checksum"
