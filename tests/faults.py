"""Faults that cluster tests inject by hand: rot a byte of a replica, read through a chosen replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client import AsyncDFSClient
from client.file_reader import DfsInputStream
from tests.minicluster import MiniCluster


def flip_byte(path: Path, offset: int) -> None:
    """Invert one byte of a file in place (bit rot a checksum must catch)."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        original = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([original[0] ^ 0xFF]))


def read_with_replica_first(cluster: MiniCluster, path: str, datanode_id: str) -> bytes:
    """Read a whole file, trying `datanode_id` first for every block it holds."""

    async def scenario() -> bytes:
        async with AsyncDFSClient(cluster.url) as fs:
            located = await fs.block_locations(path)
            blocks = [
                block.model_copy(update={"locations": sorted(block.locations, key=lambda n: n.id != datanode_id)})
                for block in located.blocks
            ]
            stream = DfsInputStream(fs.rpc, fs.http, path, located.model_copy(update={"blocks": blocks}))
            async with stream:
                return await stream.read()

    return asyncio.run(scenario())
