"""Reading verified, chunk-aligned packets of a finalised replica."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from client.protocol.block_format import (
    DIGEST_SIZE,
    META_HEADER_SIZE,
    chunk_count,
    decode_meta_header,
    verify_chunks,
)
from client.protocol.errors import ChecksumMismatchError, InvalidArgumentError
from datanode.storage.block_store import ReplicaInfo


@dataclass(frozen=True)
class ReadPlan:
    """The chunk-aligned span a read request becomes."""

    start: int
    end: int
    bytes_per_checksum: int


class ReplicaReader:
    """Open data and meta files of one replica; each packet read is verified before it leaves."""

    def __init__(self, replica: ReplicaInfo) -> None:
        self.replica = replica
        self._data_fd = os.open(replica.data_path, os.O_RDONLY)
        try:
            self._meta_fd = os.open(replica.meta_path, os.O_RDONLY)
            self.header = decode_meta_header(os.pread(self._meta_fd, META_HEADER_SIZE, 0))
            self._check_sizes()
        except BaseException:
            self.close()
            raise

    def _check_sizes(self) -> None:
        length = self.replica.length
        bpc = self.header.bytes_per_checksum
        data_size = os.fstat(self._data_fd).st_size
        meta_size = os.fstat(self._meta_fd).st_size
        if data_size != length:
            raise ChecksumMismatchError(
                f"block {self.replica.block_id}: data file holds {data_size} bytes, expected {length}"
            )
        if meta_size != META_HEADER_SIZE + chunk_count(length, bpc) * DIGEST_SIZE:
            raise ChecksumMismatchError(f"block {self.replica.block_id}: meta file has the wrong size")

    def plan(self, offset: int, length: int | None) -> ReadPlan:
        """Widen [offset, offset+length) to whole chunks so the reader can verify them."""
        total = self.replica.length
        if offset > total:
            raise InvalidArgumentError(f"offset {offset} is past the end of block {self.replica.block_id} ({total})")
        end = total if length is None else min(total, offset + length)
        bpc = self.header.bytes_per_checksum
        aligned_end = min(total, -(-end // bpc) * bpc)
        return ReadPlan(start=offset - offset % bpc, end=aligned_end, bytes_per_checksum=bpc)

    def read_packet(self, start: int, size: int) -> tuple[bytes, bytes]:
        """(digests, data) of [start, start+size), verified; `start` must be chunk-aligned."""
        bpc = self.header.bytes_per_checksum
        data = os.pread(self._data_fd, size, start)
        digests = os.pread(
            self._meta_fd,
            chunk_count(size, bpc) * DIGEST_SIZE,
            META_HEADER_SIZE + (start // bpc) * DIGEST_SIZE,
        )
        if len(data) != size:
            raise ChecksumMismatchError(f"block {self.replica.block_id} is shorter than its recorded length")
        verify_chunks(data, digests, bpc, block_offset=start, what=f"block {self.replica.block_id}")
        return digests, data

    def packets(self, plan: ReadPlan, packet_size: int) -> Iterator[tuple[int, int]]:
        """(start, size) of each packet of a plan; packet_size is a multiple of the chunk size."""
        position = plan.start
        while position < plan.end:
            size = min(packet_size, plan.end - position)
            yield position, size
            position += size

    def close(self) -> None:
        for name in ("_data_fd", "_meta_fd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
