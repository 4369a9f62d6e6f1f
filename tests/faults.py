"""Faults that cluster tests inject by hand: rot a byte of a replica, read through a chosen replica."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from client import AsyncDFSClient
from client.file_reader import DfsInputStream
from client.protocol.common import DatanodeRef
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


def read_asking_first(cluster: MiniCluster, path: str, first: DatanodeRef, **client_options: Any) -> bytes:
    """Read a whole file asking `first` before the NameNode's locations for every block, whether the
    NameNode lists it or not: a client holding old locations, or a node asked for blocks it has only
    stale copies of (`client_options` go to AsyncDFSClient, e.g. a short `read_timeout`)."""

    async def scenario() -> bytes:
        client_options.setdefault("ca_file", cluster.ca_file)
        async with AsyncDFSClient(cluster.url, **client_options) as fs:
            located = await fs.block_locations(path)
            blocks = [
                block.model_copy(update={"locations": [first, *(n for n in block.locations if n.id != first.id)]})
                for block in located.blocks
            ]
            stream = DfsInputStream(fs.rpc, fs.http, path, located.model_copy(update={"blocks": blocks}))
            async with stream:
                return await stream.read()

    return asyncio.run(scenario())
