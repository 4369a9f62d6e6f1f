"""put/get round trips through real processes: sizes around block boundaries, many blocks, streams."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from pathlib import Path

import pytest

from client import AsyncDFSClient
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024
MIB = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 4 * MIB))
            handle.write(chunk)
            remaining -= len(chunk)
    return path


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345])
def test_put_get_round_trip(cluster: MiniCluster, remote_dir: str, local_tmp: Path, size: int) -> None:
    source = random_file(local_tmp / "source", size)
    remote = f"{remote_dir}/file_{size}"
    with cluster.client() as fs:
        status = fs.put(source, remote, block_size=BLOCK)
        assert status.length == size
        assert not status.under_construction
        copied = fs.get(remote, local_tmp / "copy")
        located = fs.block_locations(remote)
    assert copied == size
    assert sha256_file(local_tmp / "copy") == sha256_file(source)
    assert len(located.blocks) == -(-size // BLOCK)
    assert [b.offset for b in located.blocks] == [i * BLOCK for i in range(len(located.blocks))]


def test_200_mib_file_with_many_blocks(cluster: MiniCluster, remote_dir: str, local_tmp: Path) -> None:
    source = random_file(local_tmp / "big", 200 * MIB)
    with cluster.client() as fs:
        fs.put(source, f"{remote_dir}/big", block_size=4 * MIB)
        fs.get(f"{remote_dir}/big", local_tmp / "big.copy")
        assert len(fs.block_locations(f"{remote_dir}/big").blocks) == 50
    assert sha256_file(local_tmp / "big.copy") == sha256_file(source)


def test_streaming_writer_and_seekable_reader(cluster: MiniCluster, remote_dir: str) -> None:
    data = os.urandom(5 * BLOCK + 777)
    path = f"{remote_dir}/streamed"
    with cluster.client() as fs:
        with fs.open(path, "wb", block_size=BLOCK) as out:
            for start in range(0, len(data), 100_003):  # odd-sized writes cross packet and block edges
                out.write(data[start : start + 100_003])
        with fs.open(path, "rb") as stream:
            assert isinstance(stream, io.BufferedReader)
            assert stream.read(10) == data[:10]
            stream.seek(3 * BLOCK - 5)
            assert stream.read(10) == data[3 * BLOCK - 5 : 3 * BLOCK + 5]
            stream.seek(-100, io.SEEK_END)
            assert stream.read() == data[-100:]
            stream.seek(BLOCK // 2)
            assert stream.read(2 * BLOCK) == data[BLOCK // 2 : BLOCK // 2 + 2 * BLOCK]
            assert stream.tell() == BLOCK // 2 + 2 * BLOCK


def test_text_mode_and_exclusive_create(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/notes.txt"
    with cluster.client() as fs:
        with fs.open(path, "x") as out:
            out.write("héllo\nwörld\n")
        with fs.open(path, "r") as stream:
            assert stream.read().splitlines() == ["héllo", "wörld"]
        with pytest.raises(FileExistsError):
            fs.open(path, "xb")


def test_async_client_round_trip(cluster: MiniCluster, remote_dir: str) -> None:
    payloads = {f"{remote_dir}/async_{n}": os.urandom(n * 150_000 + 1) for n in range(6)}

    async def scenario() -> dict[str, bytes]:
        async with AsyncDFSClient(cluster.url) as fs:
            await asyncio.gather(*(fs.write_bytes(path, data, block_size=BLOCK) for path, data in payloads.items()))
            results = await asyncio.gather(*(fs.read_bytes(path) for path in payloads))
            return dict(zip(payloads, results, strict=True))

    assert asyncio.run(scenario()) == payloads
