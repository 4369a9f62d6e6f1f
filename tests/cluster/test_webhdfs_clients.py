"""Unmodified third-party WebHDFS clients against our NameNode: HdfsCLI, fsspec's webhdfs, pandas."""

from __future__ import annotations

import asyncio
import filecmp
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import fsspec
import pandas as pd
import pytest
from hdfs import HdfsError, InsecureClient

from client.filesystem import AsyncDFSClient
from client.protocol.hadoop_checksum import file_checksum_of
from tests import tls_mode
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster

BLOCK = 64 * 1024


def hdfscli(cluster: MiniCluster, user: str = "alice") -> InsecureClient:
    return InsecureClient(cluster.url, user=user)


def webhdfs_fs(cluster: MiniCluster) -> fsspec.AbstractFileSystem:
    host, port = cluster.url.split("://", 1)[1].rsplit(":", 1)
    return fsspec.filesystem(
        "webhdfs", host=host, port=int(port), user="alice", use_https=tls_mode.enabled(), skip_instance_cache=True
    )


def test_hdfscli_write_read_and_metadata(cluster: MiniCluster, remote_dir: str) -> None:
    client = hdfscli(cluster)
    data = os.urandom(4 * BLOCK + 17)
    client.write(f"{remote_dir}/f.bin", data, blocksize=BLOCK, replication=3)
    with client.read(f"{remote_dir}/f.bin") as reader:
        assert reader.read() == data
    with client.read(f"{remote_dir}/f.bin", offset=BLOCK - 5, length=BLOCK + 10) as reader:
        assert reader.read() == data[BLOCK - 5 : 2 * BLOCK + 5]
    status = client.status(f"{remote_dir}/f.bin")
    assert (status["length"], status["type"], status["owner"]) == (len(data), "FILE", "alice")
    assert client.status(f"{remote_dir}/missing", strict=False) is None
    assert client.list(remote_dir) == ["f.bin"]
    assert client.content(remote_dir)["length"] == len(data)
    client.makedirs(f"{remote_dir}/sub/deeper", permission="750")
    client.rename(f"{remote_dir}/f.bin", f"{remote_dir}/sub/g.bin")
    client.set_replication(f"{remote_dir}/sub/g.bin", 2)
    client.set_permission(f"{remote_dir}/sub/g.bin", "600")
    client.set_times(f"{remote_dir}/sub/g.bin", access_time=1000, modification_time=2000)
    status = client.status(f"{remote_dir}/sub/g.bin")
    assert (status["replication"], status["permission"], status["modificationTime"]) == (2, "600", 2000)
    assert [name for name, _ in client.list(f"{remote_dir}/sub", status=True)] == ["deeper", "g.bin"]
    client.write(f"{remote_dir}/sub/g.bin", b"more", append=True)
    with client.read(f"{remote_dir}/sub/g.bin", offset=len(data)) as reader:
        assert reader.read() == b"more"
    assert client.delete(f"{remote_dir}/sub", recursive=True)
    assert not client.delete(f"{remote_dir}/sub")


def test_hdfscli_errors(cluster: MiniCluster, remote_dir: str) -> None:
    client = hdfscli(cluster)
    with pytest.raises(HdfsError, match="does not exist"):
        client.status(f"{remote_dir}/missing")
    with pytest.raises(HdfsError, match="does not exist"), client.read(f"{remote_dir}/missing") as reader:
        reader.read()
    client.write(f"{remote_dir}/exists", b"x")
    with pytest.raises(HdfsError, match="already exists"):
        client.write(f"{remote_dir}/exists", b"y")
    client.write(f"{remote_dir}/exists", b"z", overwrite=True)
    with client.read(f"{remote_dir}/exists") as reader:
        assert reader.read() == b"z"
    with pytest.raises(HdfsError):
        client.rename(f"{remote_dir}/missing", f"{remote_dir}/other")


def test_hdfscli_upload_and_download_a_tree(cluster: MiniCluster, remote_dir: str, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    for relative, size in [("a.txt", 10), ("sub/b.bin", 3 * BLOCK + 1), ("sub/deeper/c", 0), ("d/e", 500)]:
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(os.urandom(size))
    client = hdfscli(cluster)
    client.upload(f"{remote_dir}/tree", str(source), n_threads=4, chunk_size=BLOCK)
    walked = sorted(
        str(PurePosixPath(root, name).relative_to(f"{remote_dir}/tree"))
        for root, _, files in client.walk(f"{remote_dir}/tree")
        for name in files
    )
    assert walked == ["a.txt", "d/e", "sub/b.bin", "sub/deeper/c"]
    back = tmp_path / "back"
    client.download(f"{remote_dir}/tree", str(back), n_threads=4)
    comparison = filecmp.dircmp(source, back)
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files
    for sub in ("sub", "d"):
        nested = filecmp.dircmp(source / sub, back / sub)
        assert not nested.diff_files and not nested.left_only


def test_listing_ten_thousand_entries(cluster: MiniCluster, remote_dir: str) -> None:
    count = 10_000

    async def make() -> None:
        async with AsyncDFSClient(cluster.url) as fs:
            for start in range(0, count, 100):
                await asyncio.gather(*(fs.mkdirs(f"{remote_dir}/d{i:05d}") for i in range(start, start + 100)))

    asyncio.run(make())
    names = hdfscli(cluster).list(remote_dir)
    assert names == [f"d{i:05d}" for i in range(count)]
    batches = webhdfs_fs(cluster).ls(remote_dir, detail=False)
    assert len(batches) == count


def test_fsspec_webhdfs(cluster: MiniCluster, remote_dir: str) -> None:
    fs = webhdfs_fs(cluster)
    data = os.urandom(3 * BLOCK + 99)
    # fsspec writes with CREATE (empty body) and then APPENDs each buffered chunk.
    with fs.open(f"{remote_dir}/f.bin", "wb", block_size=BLOCK) as out:
        out.write(data[:BLOCK])
        out.write(data[BLOCK:])
    assert fs.cat(f"{remote_dir}/f.bin") == data
    assert fs.cat_file(f"{remote_dir}/f.bin", start=BLOCK - 3, end=2 * BLOCK + 4) == data[BLOCK - 3 : 2 * BLOCK + 4]
    with fs.open(f"{remote_dir}/f.bin", "rb") as handle:
        handle.seek(2 * BLOCK)
        assert handle.read(50) == data[2 * BLOCK : 2 * BLOCK + 50]
    info = fs.info(f"{remote_dir}/f.bin")
    assert (info["size"], info["type"]) == (len(data), "file")
    fs.mkdir(f"{remote_dir}/dir")
    assert sorted(fs.ls(remote_dir, detail=False)) == [f"{remote_dir}/dir", f"{remote_dir}/f.bin"]
    fs.mv(f"{remote_dir}/f.bin", f"{remote_dir}/dir/g.bin")
    assert fs.exists(f"{remote_dir}/dir/g.bin") and not fs.exists(f"{remote_dir}/f.bin")
    assert fs.du(remote_dir) == len(data)
    with pytest.raises(FileNotFoundError):
        fs.info(f"{remote_dir}/missing")
    fs.rm(f"{remote_dir}/dir", recursive=True)
    assert not fs.exists(f"{remote_dir}/dir")


def test_pandas_through_webhdfs_urls(cluster: MiniCluster, remote_dir: str) -> None:
    frame = pd.DataFrame(
        {"id": range(20_000), "name": [f"row{i}" for i in range(20_000)], "value": [i * 0.5 for i in range(20_000)]}
    )
    authority = cluster.url.split("://", 1)[1]
    options = {"user": "alice", "use_https": tls_mode.enabled()}
    csv_url = f"webhdfs://{authority}{remote_dir}/frame.csv"
    frame.to_csv(csv_url, index=False, storage_options=options)
    pd.testing.assert_frame_equal(pd.read_csv(csv_url, storage_options=options), frame)
    parquet_url = f"webhdfs://{authority}{remote_dir}/frame.parquet"
    frame.to_parquet(parquet_url, storage_options=options)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_url, storage_options=options), frame)
    column = pd.read_parquet(parquet_url, columns=["value"], storage_options=options)
    pd.testing.assert_series_equal(column["value"], frame["value"])


def test_proxy_mode_streams_through_the_namenode(make_cluster: Callable[..., MiniCluster], tmp_path: Path) -> None:
    cluster = make_cluster(datanodes=2, racks=1, namenode_args=["--webhdfs-proxy"])
    with cluster.client() as fs:  # a directory of alice's, the user HdfsCLI acts as
        fs.mkdirs("/alice")
        fs.set_owner("/alice", "alice")
    client = hdfscli(cluster)
    # HdfsCLI's own first step, to look at the Location it gets.
    first = client._create("/alice/p.bin", allow_redirects=False)
    location = first.headers["location"]
    assert location.startswith(cluster.url + "/webhdfs/v1/alice/p.bin?")
    assert "data=true" in location
    data = os.urandom(2 * BLOCK + 3)
    client.write("/alice/p.bin", data, overwrite=True, blocksize=BLOCK)
    with client.read("/alice/p.bin", offset=BLOCK, length=10) as reader:
        assert reader.read() == data[BLOCK : BLOCK + 10]
    client.write("/alice/p.bin", b"!", append=True)
    with client.read("/alice/p.bin") as reader:
        assert reader.read() == data + b"!"


def test_getfilechecksum_matches_hadoops_format(cluster: MiniCluster, remote_dir: str) -> None:
    data = os.urandom(3 * BLOCK + 1000)
    client = hdfscli(cluster)
    client.write(f"{remote_dir}/c.bin", data, blocksize=BLOCK)
    answer = client.checksum(f"{remote_dir}/c.bin")
    expected = file_checksum_of([data], BLOCK)
    assert answer == {"algorithm": expected.algorithm, "bytes": expected.bytes, "length": 28}
    assert answer["algorithm"] == f"MD5-of-{BLOCK // 512}MD5-of-512CRC32C"
    # The same bytes written with the same block size through the SDK: the same checksum.
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/d.bin", data, block_size=BLOCK)
    assert client.checksum(f"{remote_dir}/d.bin") == answer
    with pytest.raises(HdfsError, match="does not exist"):
        client.checksum(f"{remote_dir}/missing")
