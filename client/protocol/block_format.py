"""Block and checksum format: the chunk checksum math and the on-disk replica layout.

A replica is two files on a DataNode: ``blk_<id>`` holds the raw bytes and
``blk_<id>_<genstamp>.meta`` holds a 16-byte header followed by one 8-byte digest per
chunk of ``bytes_per_checksum`` bytes (the last chunk may be short). The same digests
travel on the wire in data-transfer packets, so a DataNode can store what a client
computed after verifying it, and a reader can verify what a DataNode sends.

Why xxh3_64 per 64 KiB: xxh3 verifies at ~50 GB/s on 64 KiB buffers on the target
machine (measured), so checksums never limit throughput, and 64 KiB chunks keep the
meta file at 0.012% of the data while a small random read verifies at most 128 KiB.
"""

from __future__ import annotations

import re
import struct
from enum import IntEnum
from typing import NamedTuple

import xxhash

from client.protocol.errors import ChecksumMismatchError

DIGEST_SIZE = 8
DEFAULT_BYTES_PER_CHECKSUM = 64 * 1024
MIN_BYTES_PER_CHECKSUM = 512
MAX_BYTES_PER_CHECKSUM = 16 * 1024 * 1024


class ChecksumAlgorithm(IntEnum):
    """Checksum algorithms a meta file or packet may name (ids are stored on disk)."""

    XXH3_64 = 1


def chunk_count(length: int, bytes_per_checksum: int) -> int:
    """How many checksum chunks cover `length` bytes."""
    return -(-length // bytes_per_checksum)


def chunk_digests(data: bytes | bytearray | memoryview, bytes_per_checksum: int) -> bytes:
    """xxh3_64 digests (8 bytes each, canonical big-endian) of each chunk of `data`, concatenated."""
    view = memoryview(data)
    digest = xxhash.xxh3_64_digest
    return b"".join([digest(view[i : i + bytes_per_checksum]) for i in range(0, len(view), bytes_per_checksum)])


def verify_chunks(
    data: bytes | bytearray | memoryview,
    digests: bytes | bytearray | memoryview,
    bytes_per_checksum: int,
    *,
    block_offset: int = 0,
    what: str = "data",
) -> None:
    """Raise ChecksumMismatchError naming the first bad chunk, if any chunk of `data` is corrupt.

    `block_offset` is where `data` starts in its block (chunk-aligned); it only makes the
    message point at the right place.
    """
    expected_len = chunk_count(len(data), bytes_per_checksum) * DIGEST_SIZE
    if len(digests) != expected_len:
        raise ChecksumMismatchError(
            f"{what}: {len(digests)} checksum bytes for {len(data)} data bytes (expected {expected_len})"
        )
    actual = chunk_digests(data, bytes_per_checksum)
    if actual == digests:
        return
    expected_view = memoryview(digests)
    for index in range(len(actual) // DIGEST_SIZE):
        start = index * DIGEST_SIZE
        if actual[start : start + DIGEST_SIZE] != expected_view[start : start + DIGEST_SIZE]:
            at = block_offset + index * bytes_per_checksum
            raise ChecksumMismatchError(f"{what}: checksum mismatch in the chunk at block offset {at}")


def validate_bytes_per_checksum(bytes_per_checksum: int) -> int:
    """Checksum chunk sizes are powers of two between 512 B and 16 MiB."""
    if not (
        MIN_BYTES_PER_CHECKSUM <= bytes_per_checksum <= MAX_BYTES_PER_CHECKSUM
        and bytes_per_checksum & (bytes_per_checksum - 1) == 0
    ):
        raise ValueError(
            f"bytes_per_checksum must be a power of two in [{MIN_BYTES_PER_CHECKSUM}, "
            f"{MAX_BYTES_PER_CHECKSUM}], got {bytes_per_checksum}"
        )
    return bytes_per_checksum


# --- meta file -------------------------------------------------------------------------

META_MAGIC = b"DFSM"
META_VERSION = 1
#: magic, format version, algorithm id, bytes per checksum, 4 reserved bytes.
META_HEADER = struct.Struct("<4sHHI4x")
META_HEADER_SIZE = META_HEADER.size


class MetaHeader(NamedTuple):
    """Decoded meta file header."""

    version: int
    algorithm: ChecksumAlgorithm
    bytes_per_checksum: int


def encode_meta_header(bytes_per_checksum: int, algorithm: ChecksumAlgorithm = ChecksumAlgorithm.XXH3_64) -> bytes:
    """The 16-byte header every meta file starts with."""
    validate_bytes_per_checksum(bytes_per_checksum)
    return META_HEADER.pack(META_MAGIC, META_VERSION, int(algorithm), bytes_per_checksum)


def decode_meta_header(raw: bytes) -> MetaHeader:
    """Parse a meta header; a damaged one means a corrupt replica."""
    if len(raw) < META_HEADER_SIZE:
        raise ChecksumMismatchError("meta file is shorter than its header")
    magic, version, algorithm, bytes_per_checksum = META_HEADER.unpack_from(raw)
    if magic != META_MAGIC:
        raise ChecksumMismatchError(f"meta file has bad magic {magic!r}")
    if version != META_VERSION:
        raise ChecksumMismatchError(f"meta file has unknown format version {version}")
    if any(raw[META_HEADER_SIZE - 4 : META_HEADER_SIZE]):
        # Version 1 writes zeros here; anything else is rot (an unchecked byte would hide it).
        raise ChecksumMismatchError("meta file header has non-zero reserved bytes")
    try:
        algo = ChecksumAlgorithm(algorithm)
        validate_bytes_per_checksum(bytes_per_checksum)
    except ValueError as exc:
        raise ChecksumMismatchError(f"meta file header is invalid: {exc}") from exc
    return MetaHeader(version, algo, bytes_per_checksum)


def meta_file_size(length: int, bytes_per_checksum: int) -> int:
    """Size of a consistent meta file for a replica of `length` bytes."""
    return META_HEADER_SIZE + chunk_count(length, bytes_per_checksum) * DIGEST_SIZE


# --- file names and directory layout -------------------------------------------------------

BLOCK_FILE_PREFIX = "blk_"
META_SUFFIX = ".meta"


def block_file_name(block_id: int) -> str:
    """Name of a replica's data file."""
    return f"{BLOCK_FILE_PREFIX}{block_id}"


def meta_file_name(block_id: int, gen_stamp: int) -> str:
    """Name of a replica's meta file; the generation stamp is part of the name, as in HDFS."""
    return f"{BLOCK_FILE_PREFIX}{block_id}_{gen_stamp}{META_SUFFIX}"


_META_NAME = re.compile(r"blk_([1-9][0-9]*)_([1-9][0-9]*)\.meta")


def parse_meta_file_name(name: str) -> tuple[int, int] | None:
    """(block id, generation stamp) from a meta file name, or None if it is not exactly one.

    Only the canonical form `meta_file_name` produces is accepted (ASCII digits, no
    leading zeros), so no other name can alias a replica.
    """
    match = _META_NAME.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def finalized_subdir(block_id: int) -> str:
    """Two-level directory (32 x 32) for a finalised replica, so no directory grows huge."""
    return f"subdir{(block_id >> 16) & 0x1F}/subdir{(block_id >> 8) & 0x1F}"
