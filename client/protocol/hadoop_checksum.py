"""Hadoop's file checksum, bit for bit: MD5 of the block MD5s of the chunk CRC32Cs.

`hdfs dfs -checksum`, `FileSystem.getFileChecksum` and WebHDFS GETFILECHECKSUM all answer
an ``MD5MD5CRC32CastagnoliFileChecksum``; `distcp` compares them to decide whether a copy
is intact. To be comparable with a Hadoop cluster (default ``dfs.bytes-per-checksum`` 512,
``dfs.checksum.type`` CRC32C) we recompute exactly what Hadoop computes, from Hadoop's
source (hadoop-hdfs ``BlockChecksumHelper``, hadoop-hdfs-client ``FileChecksumHelper``,
hadoop-common ``MD5MD5CRC32FileChecksum``, ``DataOutputBuffer``, ``WritableUtils``):

* block: MD5 over the big-endian 4-byte CRC32C of each ``bytes_per_crc`` chunk of the
  block, the last chunk possibly short (the DataNode digests its meta file's CRCs);
* ``crcPerBlock``: the CRC count of the *first* block if the file has more than one
  block, else 0;
* file: MD5 over the block MD5s as they sit in a ``DataOutputBuffer`` — and Hadoop
  digests the buffer's whole backing array (``getData()``, not ``getLength()`` bytes),
  which starts at 32 bytes and doubles, so the concatenation is zero-padded to 32·2^k
  bytes (one block: 16 zero bytes follow its MD5);
* serialised (``write``): int bytesPerCRC, long crcPerBlock, 16-byte MD5, big-endian:
  28 bytes. WebHDFS's JSON ``bytes`` is the hex of ``getBytes()``, which is the same
  padded-backing-array story: 32 bytes, the last 4 zero, while ``length`` says 28;
* algorithm name: ``MD5-of-<crcPerBlock>MD5-of-<bytesPerCRC>CRC32C``;
* a file without blocks gets Hadoop's fixed "magic" answer: ``MD5-of-0MD5-of-0CRC32``
  (CRC32, not CRC32C) over MD5 of 32 zero bytes.

CRC32C runs in hardware; the Python cost is one call per 512-byte chunk, so chunks are
handed to it in batches of memoryview slices and the CRCs byte-swapped as one array.
"""

from __future__ import annotations

import builtins
import hashlib
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Annotated, NamedTuple

from crc32c import crc32c
from pydantic import Field

from client.protocol.common import WireModel

#: Hadoop's default ``dfs.bytes-per-checksum``.
BYTES_PER_CRC = 512
CRC_TYPE = "CRC32C"
MD5_SIZE = 16
#: ``MD5MD5CRC32FileChecksum.LENGTH``: int + long + MD5.
CHECKSUM_LENGTH = 28
#: Initial capacity of a Java ``ByteArrayOutputStream`` (hence of a ``DataOutputBuffer``).
JAVA_BUFFER_INITIAL = 32
#: Bytes of block data per batch of CRC calls (64 KiB measured fastest: the slice list stays in cache).
CRC_BATCH = 64 * 1024

_CHECKSUM = struct.Struct(">iq16s")
_CRC = struct.Struct(">I")
_SWAP_TO_BIG_ENDIAN = sys.byteorder == "little"
assert array("I").itemsize == 4, "array('I') must hold 32-bit values"

Buffer = bytes | bytearray | memoryview


class BlockChecksum(NamedTuple):
    """A block's MD5-of-CRC32C and how many CRCs went into it."""

    md5: bytes
    crc_count: int


class FileChecksum(WireModel):
    """A file checksum exactly as WebHDFS GETFILECHECKSUM renders it (``{"FileChecksum": {...}}``).

    `bytes` is Hadoop's JSON value verbatim: the hex of the serialised checksum as Java's
    buffer holds it, so 64 hex digits of which the first ``2 * length`` (56) count.
    """

    algorithm: str
    bytes: Annotated[str, Field(pattern=r"^(?:[0-9a-f]{2})*$")]
    length: Annotated[int, Field(ge=0)]

    @property
    def raw(self) -> builtins.bytes:
        """The `length` serialised bytes (bytesPerCRC, crcPerBlock, MD5), as `hdfs dfs -checksum` prints them."""
        return builtins.bytes.fromhex(self.bytes)[: self.length]

    @property
    def md5(self) -> str:
        """The file MD5 in hex (what Hadoop's ``toString()`` shows after the algorithm)."""
        return self.raw[-MD5_SIZE:].hex()


class BlockMd5Crc:
    """Incremental MD5-of-CRC32C of one block: feed pieces of any size, memory stays constant.

    Pieces need not be aligned to `bytes_per_crc`: an unfinished chunk is carried over.
    """

    def __init__(self, bytes_per_crc: int = BYTES_PER_CRC) -> None:
        if bytes_per_crc <= 0:
            raise ValueError(f"bytes_per_crc must be positive, got {bytes_per_crc}")
        self.bytes_per_crc = bytes_per_crc
        self.length = 0
        self.crc_count = 0
        self._batch = max(bytes_per_crc, CRC_BATCH // bytes_per_crc * bytes_per_crc)
        self._md5 = hashlib.md5()
        self._tail = b""  # the start of a chunk that is not complete yet (< bytes_per_crc bytes)
        self._done = False

    def update(self, data: Buffer) -> None:
        """Add the next bytes of the block."""
        if self._done:
            raise ValueError("block checksum already finished")
        view = memoryview(data).cast("B")
        self.length += len(view)
        bpc = self.bytes_per_crc
        if self._tail:
            need = bpc - len(self._tail)
            self._tail += view[:need].tobytes()
            view = view[need:]
            if len(self._tail) < bpc:
                return
            self._md5.update(_CRC.pack(crc32c(self._tail)))
            self.crc_count += 1
            self._tail = b""
        whole = len(view) - len(view) % bpc
        if whole:
            self._digest_chunks(view[:whole])
        if whole < len(view):
            self._tail = view[whole:].tobytes()

    def finish(self) -> BlockChecksum:
        """Digest the short last chunk, if any, and return the block checksum."""
        if not self._done:
            if self._tail:
                self._digest_chunks(memoryview(self._tail))
                self._tail = b""
            self._done = True
        return BlockChecksum(self._md5.digest(), self.crc_count)

    def _digest_chunks(self, view: memoryview) -> None:
        """CRC every chunk of `view` (all whole but maybe the last) into the MD5, a batch at a time."""
        bpc, step = self.bytes_per_crc, self._batch
        md5_update = self._md5.update
        for start in range(0, len(view), step):
            batch = view[start : start + step]
            crcs = array("I", map(crc32c, [batch[i : i + bpc] for i in range(0, len(batch), bpc)]))
            if _SWAP_TO_BIG_ENDIAN:
                crcs.byteswap()
            md5_update(crcs)
            self.crc_count += len(crcs)


def block_checksum(pieces: Iterable[Buffer], bytes_per_crc: int = BYTES_PER_CRC) -> BlockChecksum:
    """MD5-of-CRC32C of a block given as a stream of pieces."""
    digest = BlockMd5Crc(bytes_per_crc)
    for piece in pieces:
        digest.update(piece)
    return digest.finish()


def crc_per_block(blocks: Sequence[BlockChecksum]) -> int:
    """Hadoop's crcPerBlock: the first block's CRC count, but 0 for a file of one block."""
    return blocks[0].crc_count if len(blocks) > 1 else 0


def algorithm_name(crc_per_block: int, bytes_per_crc: int, crc_type: str = CRC_TYPE) -> str:
    """``MD5-of-<crcPerBlock>MD5-of-<bytesPerCRC><crc type>``, as Hadoop names it."""
    return f"MD5-of-{crc_per_block}MD5-of-{bytes_per_crc}{crc_type}"


def java_buffer_capacity(size: int) -> int:
    """Capacity a fresh ``DataOutputBuffer`` has grown to after `size` bytes (32, doubling)."""
    capacity = JAVA_BUFFER_INITIAL
    while capacity < size:
        capacity *= 2
    return capacity


def java_buffer_data(written: builtins.bytes) -> builtins.bytes:
    """What ``DataOutputBuffer.getData()`` returns after `written`: zero-padded to its capacity."""
    return written.ljust(java_buffer_capacity(len(written)), b"\0")


def file_md5(block_md5s: Iterable[builtins.bytes]) -> builtins.bytes:
    """MD5 of the block MD5s, including Hadoop's zero padding to the Java buffer's capacity."""
    return hashlib.md5(java_buffer_data(b"".join(block_md5s))).digest()


def encode_checksum(bytes_per_crc: int, crc_per_block: int, md5: builtins.bytes) -> builtins.bytes:
    """``MD5MD5CRC32FileChecksum.write``: int bytesPerCRC, long crcPerBlock, MD5 (28 bytes, big-endian)."""
    if len(md5) != MD5_SIZE:
        raise ValueError(f"an MD5 has {MD5_SIZE} bytes, got {len(md5)}")
    return _CHECKSUM.pack(bytes_per_crc, crc_per_block, md5)


def make_file_checksum(algorithm: str, bytes_per_crc: int, crc_per_block: int, md5: builtins.bytes) -> FileChecksum:
    """The WebHDFS rendering of a checksum: `bytes` is ``getBytes()`` (the padded buffer) in hex."""
    raw = encode_checksum(bytes_per_crc, crc_per_block, md5)
    return FileChecksum(algorithm=algorithm, bytes=java_buffer_data(raw).hex(), length=len(raw))


#: What Hadoop answers for a file with no blocks: a fixed value older HDFS versions returned.
EMPTY_FILE_CHECKSUM = make_file_checksum(
    algorithm_name(0, 0, "CRC32"), 0, 0, hashlib.md5(bytes(JAVA_BUFFER_INITIAL)).digest()
)


def compose_file_checksum(blocks: Sequence[BlockChecksum], bytes_per_crc: int = BYTES_PER_CRC) -> FileChecksum:
    """The file checksum from its blocks' checksums, in file order."""
    if not blocks:
        return EMPTY_FILE_CHECKSUM
    per_block = crc_per_block(blocks)
    return make_file_checksum(
        algorithm_name(per_block, bytes_per_crc), bytes_per_crc, per_block, file_md5(b.md5 for b in blocks)
    )


def file_checksum_of(pieces: Iterable[Buffer], block_size: int, bytes_per_crc: int = BYTES_PER_CRC) -> FileChecksum:
    """The checksum Hadoop would give these bytes stored with `block_size` (e.g. for a local file).

    Pieces may be of any size; they are cut at block boundaries here.
    """
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    blocks: list[BlockChecksum] = []
    current = BlockMd5Crc(bytes_per_crc)
    for piece in pieces:
        view = memoryview(piece).cast("B")
        while view:
            room = block_size - current.length
            current.update(view[:room])
            view = view[room:]
            if current.length == block_size:
                blocks.append(current.finish())
                current = BlockMd5Crc(bytes_per_crc)
    if current.length:
        blocks.append(current.finish())
    return compose_file_checksum(blocks, bytes_per_crc)


__all__ = [
    "BYTES_PER_CRC",
    "CHECKSUM_LENGTH",
    "EMPTY_FILE_CHECKSUM",
    "BlockChecksum",
    "BlockMd5Crc",
    "FileChecksum",
    "algorithm_name",
    "block_checksum",
    "compose_file_checksum",
    "crc_per_block",
    "encode_checksum",
    "file_checksum_of",
    "file_md5",
    "java_buffer_capacity",
    "java_buffer_data",
    "make_file_checksum",
]
