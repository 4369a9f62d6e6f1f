"""The `dfs://` fsspec file system against a real cluster: fsspec's own behaviour suites, our
operations one by one, exact ranged reads (bytes counted on the wire), pandas and pyarrow."""

from __future__ import annotations

import errno
import gzip
import os
import pickle
import posixpath
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import fsspec
import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractOpenTests,
    AbstractPipeTests,
)

from client.dfs_fsspec import DFSFileSystem
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster

KIB = 1024
BLOCK = 64 * KIB  # the NameNode's minimum block size: multi-block files stay small


# --- helpers --------------------------------------------------------------------------------


class _CountedBody(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, owner: CountingTransport) -> None:
        self._inner = inner
        self._owner = owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._owner.block_bytes += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """The real network, counting requests per route and the response bytes DataNodes send for
    block reads (what actually reached the client, packet framing and checksums included)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.block_bytes = 0
        self.requests: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = "/v1/blocks" if path.startswith("/v1/blocks/") else path
        self.requests[f"{request.method} {route}"] += 1
        response = await self._inner.handle_async_request(request)
        if request.method == "GET" and route == "/v1/blocks":
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _CountedBody(response.stream, self)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def authority(cluster: MiniCluster) -> str:
    """host:port of the NameNode, as a dfs:// URL names it."""
    return cluster.url.split("://", 1)[1].rstrip("/")


@pytest.fixture()
def dfs(cluster: MiniCluster) -> Iterator[DFSFileSystem]:
    fs = DFSFileSystem(namenode=cluster.url, skip_instance_cache=True)
    yield fs
    fs.close()


@pytest.fixture()
def counted(cluster: MiniCluster) -> Iterator[tuple[DFSFileSystem, CountingTransport]]:
    transport = CountingTransport()
    fs = DFSFileSystem(namenode=cluster.url, skip_instance_cache=True, client_options={"transport": transport})
    yield fs, transport
    fs.close()


@pytest.fixture()
def url(cluster: MiniCluster, remote_dir: str) -> str:
    """The test's remote directory as a full dfs:// URL."""
    return f"dfs://{authority(cluster)}{remote_dir}"


# --- fsspec's own behaviour suites -------------------------------------------------------------


class DFSFixtures(AbstractFixtures):  # type: ignore[misc]
    @pytest.fixture()
    def fs(self, dfs: DFSFileSystem, db_url: str | None) -> DFSFileSystem:
        if db_url is not None:
            # These cases check the fsspec layer, which is the same over either metadata backend
            # (the tests below run on both); at about a second each, once is enough. fsspec's Get
            # and Put suites (90 more cases of its generic local<->remote copying over the same
            # primitives) are left out for time; test_get_and_put_through_local_files covers ours.
            pytest.skip("fsspec's generic suites run on the SQLite cluster only")
        return dfs

    @pytest.fixture()
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join

    @pytest.fixture()
    def fs_path(self, remote_dir: str) -> str:
        return remote_dir


class TestDFSCopy(DFSFixtures, AbstractCopyTests):  # type: ignore[misc]
    pass


class TestDFSOpen(DFSFixtures, AbstractOpenTests):  # type: ignore[misc]
    pass


class TestDFSPipe(DFSFixtures, AbstractPipeTests):  # type: ignore[misc]
    pass


# --- URLs and instances ------------------------------------------------------------------------


def test_urls_reach_the_namenode_they_name(cluster: MiniCluster, url: str) -> None:
    assert type(fsspec.filesystem("dfs", namenode=cluster.url)) is DFSFileSystem  # the entry point
    fs, path = fsspec.core.url_to_fs(f"{url}//sub/file.bin/")
    assert isinstance(fs, DFSFileSystem)
    assert fs.namenode == cluster.url
    assert path == f"{url.split(authority(cluster))[1]}/sub/file.bin"
    assert fs.unstrip_protocol(path) == f"{url}/sub/file.bin"
    host, port = authority(cluster).rsplit(":", 1)
    assert DFSFileSystem(host=host, port=int(port), user="alice").namenode == cluster.url
    assert DFSFileSystem._get_kwargs_from_urls("dfs://bob@h:1234/x") == {"host": "h", "port": 1234, "user": "bob"}
    assert DFSFileSystem._strip_protocol("dfs://h:1") == "/"
    assert DFSFileSystem._strip_protocol("a//b/") == "/a/b"


def test_the_file_system_pickles_and_forks_its_own_client(dfs: DFSFileSystem, remote_dir: str) -> None:
    dfs.pipe(f"{remote_dir}/f", b"data")
    clone = pickle.loads(pickle.dumps(dfs))
    assert clone.cat(f"{remote_dir}/f") == b"data"
    assert dfs.fsid == clone.fsid and dfs.fsid.startswith("dfs_")


# --- metadata ------------------------------------------------------------------------------------


def make_tree(fs: DFSFileSystem, root: str) -> None:
    fs.makedirs(f"{root}/a/b")
    fs.makedirs(f"{root}/empty")
    fs.pipe({f"{root}/top.txt": b"12345", f"{root}/a/one.csv": b"x" * 10, f"{root}/a/b/two.csv": b"y" * 20})


def test_ls_info_exists(dfs: DFSFileSystem, remote_dir: str) -> None:
    make_tree(dfs, remote_dir)
    assert dfs.ls(remote_dir, detail=False) == [f"{remote_dir}/{n}" for n in ("a", "empty", "top.txt")]
    entries = {e["name"]: e for e in dfs.ls(remote_dir, detail=True) if isinstance(e, dict)}
    assert entries[f"{remote_dir}/a"]["type"] == "directory"
    top = entries[f"{remote_dir}/top.txt"]
    assert top == dfs.info(f"{remote_dir}/top.txt")
    assert (top["type"], top["size"], top["replication"]) == ("file", 5, 3)
    assert top["mode"] & 0o777 == 0o644 and top["mode"] & 0o170000 == 0o100000
    assert {"owner", "group", "mtime", "block_size"} <= set(top)
    assert dfs.ls(f"{remote_dir}/top.txt", detail=False) == [f"{remote_dir}/top.txt"]
    assert dfs.info(remote_dir + "/")["type"] == "directory"
    assert dfs.exists(f"{remote_dir}/a") and not dfs.exists(f"{remote_dir}/nope")
    assert not dfs.exists(f"{remote_dir}/top.txt/under-a-file")
    assert dfs.isdir(f"{remote_dir}/a") and dfs.isfile(f"{remote_dir}/top.txt")
    assert not dfs.isdir(f"{remote_dir}/top.txt") and not dfs.isfile(f"{remote_dir}/nope")
    assert dfs.size(f"{remote_dir}/a/one.csv") == 10


def test_find_glob_walk_du(dfs: DFSFileSystem, remote_dir: str) -> None:
    make_tree(dfs, remote_dir)
    files = [f"{remote_dir}/a/b/two.csv", f"{remote_dir}/a/one.csv", f"{remote_dir}/top.txt"]
    assert dfs.find(remote_dir) == files
    assert f"{remote_dir}/empty" in dfs.find(remote_dir, withdirs=True)
    assert dfs.find(remote_dir, maxdepth=1) == [f"{remote_dir}/top.txt"]
    assert dfs.glob(f"{remote_dir}/**/*.csv") == files[:2]
    assert dfs.glob(f"dfs://ignored:1{remote_dir}/*.txt") == [f"{remote_dir}/top.txt"]
    walked = {root: (sorted(dirs), sorted(names)) for root, dirs, names in dfs.walk(remote_dir)}
    assert walked[remote_dir] == (["a", "empty"], ["top.txt"])
    assert walked[f"{remote_dir}/a/b"] == ([], ["two.csv"])
    assert dfs.du(remote_dir) == 35  # one content-summary call on the NameNode
    assert dfs.du(remote_dir, total=False) == {p: dfs.size(p) for p in files}
    assert dfs.du(f"{remote_dir}/a", maxdepth=1) == 10


def test_times(dfs: DFSFileSystem, remote_dir: str) -> None:
    dfs.touch(f"{remote_dir}/f")
    modified = dfs.modified(f"{remote_dir}/f")
    assert modified.tzinfo is not None
    assert abs(modified.timestamp() - dfs.info(f"{remote_dir}/f")["mtime"]) < 1e-3
    with pytest.raises(NotImplementedError):
        dfs.created(f"{remote_dir}/f")


# --- namespace changes -------------------------------------------------------------------------


def test_mkdir_makedirs(dfs: DFSFileSystem, remote_dir: str) -> None:
    dfs.mkdir(f"{remote_dir}/x/y")
    assert dfs.isdir(f"{remote_dir}/x/y")
    with pytest.raises(FileExistsError):
        dfs.mkdir(f"{remote_dir}/x/y")
    with pytest.raises(FileNotFoundError):
        dfs.mkdir(f"{remote_dir}/p/q", create_parents=False)
    dfs.makedirs(f"{remote_dir}/x/y", exist_ok=True)
    with pytest.raises(FileExistsError):
        dfs.makedirs(f"{remote_dir}/x/y")
    dfs.touch(f"{remote_dir}/file")
    with pytest.raises(FileExistsError):
        dfs.makedirs(f"{remote_dir}/file", exist_ok=True)


def test_rm_uses_one_recursive_delete(counted: tuple[DFSFileSystem, CountingTransport], remote_dir: str) -> None:
    fs, transport = counted
    make_tree(fs, remote_dir)
    with pytest.raises(OSError) as refused:
        fs.rm(f"{remote_dir}/a")
    assert refused.value.errno == errno.ENOTEMPTY
    assert fs.exists(f"{remote_dir}/a/b/two.csv")
    before = transport.requests["POST /v1/namespace/delete"]
    fs.rm(f"{remote_dir}/a", recursive=True)
    assert transport.requests["POST /v1/namespace/delete"] == before + 1
    assert not fs.exists(f"{remote_dir}/a")
    fs.rm(f"{remote_dir}/empty")  # an empty directory goes without recursive
    fs.rm_file(f"{remote_dir}/top.txt")
    assert fs.ls(remote_dir) == []
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{remote_dir}/nope")


def test_rm_globs_lists_and_rmdir(dfs: DFSFileSystem, remote_dir: str) -> None:
    make_tree(dfs, remote_dir)
    dfs.rm(f"{remote_dir}/a/**/*.csv")
    assert dfs.find(f"{remote_dir}/a") == []
    with pytest.raises(IsADirectoryError):
        dfs.rm_file(f"{remote_dir}/a")
    with pytest.raises(NotADirectoryError):
        dfs.rmdir(f"{remote_dir}/top.txt")
    with pytest.raises(OSError):
        dfs.rmdir(f"{remote_dir}/a")  # still holds b
    dfs.rm([f"{remote_dir}/a", f"{remote_dir}/a/b", f"{remote_dir}/top.txt"], recursive=True)
    dfs.rmdir(f"{remote_dir}/empty")
    assert dfs.ls(remote_dir) == []


def test_mv_renames_on_the_namenode(dfs: DFSFileSystem, remote_dir: str) -> None:
    make_tree(dfs, remote_dir)
    file_id = dfs.info(f"{remote_dir}/a")["file_id"]
    dfs.mv(f"{remote_dir}/a", f"{remote_dir}/moved")  # a whole directory, one rename
    assert dfs.info(f"{remote_dir}/moved")["file_id"] == file_id
    assert dfs.cat(f"{remote_dir}/moved/b/two.csv") == b"y" * 20
    dfs.mv(f"{remote_dir}/top.txt", f"{remote_dir}/empty")  # into an existing directory
    assert dfs.cat(f"{remote_dir}/empty/top.txt") == b"12345"
    dfs.pipe(f"{remote_dir}/new", b"new")
    dfs.mv(f"{remote_dir}/new", f"{remote_dir}/empty/top.txt")  # replaces a file
    assert dfs.cat(f"{remote_dir}/empty/top.txt") == b"new"
    dfs.mv(f"{remote_dir}/moved/*.csv", f"{remote_dir}/csvs")
    assert dfs.ls(f"{remote_dir}/csvs", detail=False) == [f"{remote_dir}/csvs/one.csv"]
    with pytest.raises(FileNotFoundError):
        dfs.mv(f"{remote_dir}/nope", f"{remote_dir}/x")
    with pytest.raises(FileNotFoundError):
        dfs.mv(f"{remote_dir}/empty/top.txt", f"{remote_dir}/no/such/dir/x")


def test_cp_file_streams_a_copy(dfs: DFSFileSystem, remote_dir: str) -> None:
    data = os.urandom(3 * BLOCK + 11)
    dfs.pipe(f"{remote_dir}/src", data, dfs_block_size=BLOCK)
    dfs.cp_file(f"{remote_dir}/src", f"{remote_dir}/dst", dfs_block_size=BLOCK, replication=2)
    assert dfs.cat(f"{remote_dir}/dst") == data
    copy = dfs.info(f"{remote_dir}/dst")
    assert copy["file_id"] != dfs.info(f"{remote_dir}/src")["file_id"]
    assert (copy["block_size"], copy["replication"]) == (BLOCK, 2)
    dfs.copy(remote_dir, f"{remote_dir}-copy", recursive=True)
    assert dfs.cat(f"{remote_dir}-copy/dst") == data
    dfs.rm(f"{remote_dir}-copy", recursive=True)


# --- reads ---------------------------------------------------------------------------------------


@pytest.fixture()
def multi_block(dfs: DFSFileSystem, cluster: MiniCluster, remote_dir: str) -> tuple[str, bytes]:
    """A file of 16 whole blocks and a bit, written through fsspec with a small block size."""
    path, data = f"{remote_dir}/blocks.bin", os.urandom(16 * BLOCK + 123)
    with dfs.open(path, "wb", dfs_block_size=BLOCK) as out:
        for start in range(0, len(data), 100_000):
            out.write(data[start : start + 100_000])
    with cluster.client() as client:
        assert len(client.block_locations(path).blocks) == 17
    return path, data


def test_cat_file_ranges_follow_slice_rules(dfs: DFSFileSystem, multi_block: tuple[str, bytes]) -> None:
    path, data = multi_block
    size = len(data)
    cases = [
        (None, None),
        (0, 10),
        (BLOCK - 5, BLOCK + 5),
        (3 * BLOCK, 7 * BLOCK + 1),
        (-200, None),
        (-200, -100),
        (size - 1, size + 100),
        (size + 5, None),
        (100, 50),
    ]
    for start, end in cases:
        assert dfs.cat_file(path, start, end) == data[start:end], (start, end)
    assert dfs.read_block(path, BLOCK - 3, 6) == data[BLOCK - 3 : BLOCK + 3]
    assert dfs.head(path, 7) == data[:7] and dfs.tail(path, 9) == data[-9:]


def test_cat_ranges_over_files(dfs: DFSFileSystem, multi_block: tuple[str, bytes], remote_dir: str) -> None:
    path, data = multi_block
    dfs.pipe(f"{remote_dir}/small", b"0123456789")
    starts: list[int | None] = [5 * BLOCK - 1, 2, 0, None, BLOCK * 16]
    ends: list[int | None] = [5 * BLOCK + 1, 8, BLOCK, 4, None]
    paths = [path, f"{remote_dir}/small", path, f"{remote_dir}/small", path]
    expected = [data[5 * BLOCK - 1 : 5 * BLOCK + 1], b"234567", data[:BLOCK], b"0123", data[BLOCK * 16 :]]
    assert dfs.cat_ranges(paths, starts, ends) == expected
    mixed = dfs.cat_ranges([path, f"{remote_dir}/missing"], 0, 4)
    assert mixed[0] == data[:4] and isinstance(mixed[1], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        dfs.cat_ranges([f"{remote_dir}/missing"], 0, 4, on_error="raise")


def test_random_access_through_an_open_file(dfs: DFSFileSystem, multi_block: tuple[str, bytes]) -> None:
    path, data = multi_block
    with dfs.open(path, "rb") as handle:
        assert handle.size == len(data) and handle.seekable()
        for position in (len(data) - 8, 3, 9 * BLOCK - 2, BLOCK, 0):
            handle.seek(position)
            assert handle.read(16) == data[position : position + 16]
        handle.seek(-5, os.SEEK_END)
        assert handle.read() == data[-5:]
        assert handle.read(10) == b""
    with dfs.open(path, "rb", cache_type="readahead", block_size=BLOCK) as handle:
        handle.seek(4 * BLOCK + 7)
        assert handle.read(2 * BLOCK) == data[4 * BLOCK + 7 : 6 * BLOCK + 7]


def test_ranged_reads_fetch_only_their_blocks(
    counted: tuple[DFSFileSystem, CountingTransport], multi_block: tuple[str, bytes]
) -> None:
    """Bytes DataNodes sent us, counted at the HTTP transport: a range costs the packets holding it
    (a packet is at most 1 MiB and never crosses a block, so here at most a block each), never the file."""
    fs, transport = counted
    path, data = multi_block
    assert fs.cat_file(path, 10 * BLOCK + 100, 10 * BLOCK + 1100) == data[10 * BLOCK + 100 : 10 * BLOCK + 1100]
    single = transport.block_bytes
    assert 1000 <= single <= BLOCK + 4 * KIB
    with fs.open(path, "rb") as handle:
        for position in (2 * BLOCK + 10, 15 * BLOCK + 10, 7 * BLOCK - 10):  # the last one spans two blocks
            handle.seek(position)
            assert handle.read(20) == data[position : position + 20]
    assert transport.block_bytes - single <= 4 * (BLOCK + 4 * KIB)
    before = transport.block_bytes
    assert fs.cat_file(path) == data
    assert transport.block_bytes - before >= len(data)  # the counter sees whole-file reads too


# --- writes --------------------------------------------------------------------------------------


def test_writes_stream_to_datanodes_before_close(
    counted: tuple[DFSFileSystem, CountingTransport], remote_dir: str
) -> None:
    fs, transport = counted
    path, data = f"{remote_dir}/streamed", os.urandom(6 * BLOCK)
    with fs.open(path, "wb", dfs_block_size=BLOCK, block_size=BLOCK) as out:
        for start in range(0, len(data), BLOCK // 2):
            out.write(data[start : start + BLOCK // 2])
        assert transport.requests["POST /v1/blocks"] >= 4  # full blocks left while we were writing
        assert fs.info(path)["under_construction"]
    assert not fs.info(path)["under_construction"]
    assert fs.cat(path) == data


def test_a_failed_write_leaves_no_file(dfs: DFSFileSystem, remote_dir: str) -> None:
    path = f"{remote_dir}/broken"
    with pytest.raises(RuntimeError), dfs.open(path, "wb", dfs_block_size=BLOCK) as out:
        out.write(os.urandom(3 * BLOCK))
        raise RuntimeError("the producer failed")
    assert not dfs.exists(path)
    handle = dfs.open(path, "wb")
    handle.write(b"never")
    handle.discard()
    assert handle.closed and not dfs.exists(path)


def test_exclusive_create_and_append(dfs: DFSFileSystem, remote_dir: str) -> None:
    path = f"{remote_dir}/log"
    with dfs.open(path, "xb") as out:
        out.write(b"one\n")
    with pytest.raises(FileExistsError):
        dfs.open(path, "xb")
    with pytest.raises(FileExistsError):
        dfs.pipe_file(path, b"x", mode="create")
    with dfs.open(path, "ab") as out:
        out.write(b"two\n")
    with dfs.open(f"{remote_dir}/fresh", "ab") as out:  # appending to nothing creates the file
        out.write(b"first")
    assert dfs.cat(path) == b"one\ntwo\n" and dfs.cat(f"{remote_dir}/fresh") == b"first"


def test_transactions_publish_on_commit_only(dfs: DFSFileSystem, remote_dir: str) -> None:
    with dfs.transaction:
        with dfs.open(f"{remote_dir}/t1", "wb") as out:
            out.write(b"committed")
        assert not dfs.exists(f"{remote_dir}/t1")
    assert dfs.cat(f"{remote_dir}/t1") == b"committed"
    with pytest.raises(RuntimeError), dfs.transaction:
        with dfs.open(f"{remote_dir}/t2", "wb") as out:
            out.write(b"discarded")
        raise RuntimeError("roll back")
    assert dfs.ls(remote_dir, detail=False) == [f"{remote_dir}/t1"]  # no temporary file left either


# --- errors --------------------------------------------------------------------------------------


def test_errors_are_the_builtin_os_errors(dfs: DFSFileSystem, remote_dir: str) -> None:
    missing = f"{remote_dir}/missing"
    for call in (dfs.info, dfs.cat, dfs.ls, dfs.open, dfs.rm, dfs.rm_file, dfs.modified):
        with pytest.raises(FileNotFoundError):
            call(missing)
    dfs.makedirs(f"{remote_dir}/dir")
    with pytest.raises(IsADirectoryError):
        dfs.open(f"{remote_dir}/dir", "wb")
    with pytest.raises(IsADirectoryError):
        dfs.pipe(f"{remote_dir}/dir", b"x")
    with pytest.raises(IsADirectoryError):
        dfs.open(f"{remote_dir}/dir", "rb")
    dfs.pipe(f"{remote_dir}/dir/f", b"x")
    with pytest.raises(OSError) as refused:
        dfs.rm(f"{remote_dir}/dir")
    assert refused.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotImplementedError):
        dfs.open(f"{remote_dir}/dir/f", "r+b")


# --- fsspec.open, pandas, pyarrow ----------------------------------------------------------------


def test_fsspec_open_text_binary_and_compressed(url: str) -> None:
    with fsspec.open(f"{url}/notes.txt", "w", encoding="utf-8") as text:
        text.write("héllo\nwörld\n")
    with fsspec.open(f"{url}/notes.txt", "r", encoding="utf-8") as text:
        assert text.read().splitlines() == ["héllo", "wörld"]
    with fsspec.open(f"{url}/notes.txt", "rb") as binary:
        assert binary.read() == "héllo\nwörld\n".encode()
    with fsspec.open(f"{url}/data.gz", "wb", compression="infer") as packed:
        packed.write(b"z" * 10_000)
    with fsspec.open(f"{url}/data.gz", "rb") as raw:  # stored compressed
        assert gzip.decompress(raw.read()) == b"z" * 10_000
    with fsspec.open(f"{url}/data.gz", "rb", compression="gzip") as unpacked:
        assert unpacked.read() == b"z" * 10_000
    files = fsspec.open_files(f"{url}/*.txt", "rb")
    assert [f.path.rsplit("/", 1)[1] for f in files] == ["notes.txt"]


def sample_frame(rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64") + seed * rows,
            "value": rng.normal(size=rows),
            "name": [f"row-{i}" for i in range(rows)],
            "flag": rng.integers(0, 2, size=rows).astype(bool),
        }
    )


def test_pandas_csv_round_trip(url: str) -> None:
    frame = sample_frame()
    frame.to_csv(f"{url}/frame.csv", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(f"{url}/frame.csv"), frame)
    frame.to_csv(f"{url}/frame.csv.gz", index=False, compression="gzip")
    pd.testing.assert_frame_equal(pd.read_csv(f"{url}/frame.csv.gz"), frame)


def test_pandas_parquet_round_trip(url: str) -> None:
    frame = sample_frame()
    frame.to_parquet(f"{url}/frame.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(f"{url}/frame.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(f"{url}/frame.parquet", columns=["id"]), frame[["id"]])


def test_parquet_column_reads_fetch_their_column_only(
    counted: tuple[DFSFileSystem, CountingTransport], remote_dir: str
) -> None:
    fs, transport = counted
    rng = np.random.default_rng(1)
    columns = {f"c{i}": rng.integers(0, 2**62, size=16 * KIB) for i in range(8)}  # 128 KiB each, incompressible
    path = f"{remote_dir}/wide.parquet"
    with fs.open(path, "wb", dfs_block_size=BLOCK) as out:
        pq.write_table(pa.table(columns), out, compression="none")
    size = fs.size(path)
    before = transport.block_bytes
    frame = pd.read_parquet(path, filesystem=fs, columns=["c2"])
    assert (frame["c2"].to_numpy() == columns["c2"]).all()
    fetched = transport.block_bytes - before
    # The footer and one column chunk, each rounded out to whole packets (here: blocks).
    assert 128 * KIB <= fetched <= size * 0.35, (fetched, size)


def test_pyarrow_dataset_over_a_directory(dfs: DFSFileSystem, remote_dir: str) -> None:
    parts = [sample_frame(200, seed) for seed in range(3)]
    for seed, part in enumerate(parts):
        pq.write_table(pa.Table.from_pandas(part), f"{remote_dir}/ds/part-{seed}.parquet", filesystem=dfs)
    expected = pd.concat(parts, ignore_index=True)
    wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(dfs))
    for filesystem in (wrapped, dfs):
        dataset = ds.dataset(f"{remote_dir}/ds", filesystem=filesystem, format="parquet")
        assert sorted(posixpath.basename(f) for f in dataset.files) == [f"part-{i}.parquet" for i in range(3)]
        table = dataset.to_table().to_pandas().sort_values("id", ignore_index=True)
        pd.testing.assert_frame_equal(table, expected)
        filtered = dataset.to_table(filter=ds.field("id") >= 400, columns=["id"])
        assert filtered.column("id").to_pylist() == list(range(400, 600))
    info = wrapped.get_file_info(f"{remote_dir}/ds/part-0.parquet")
    assert info.type == pafs.FileType.File and info.size == dfs.size(f"{remote_dir}/ds/part-0.parquet")


def test_get_and_put_through_local_files(dfs: DFSFileSystem, remote_dir: str, local_tmp: Path) -> None:
    source = local_tmp / "up.bin"
    source.write_bytes(os.urandom(2 * BLOCK + 1))
    dfs.put(str(source), f"{remote_dir}/up.bin")
    dfs.get(f"{remote_dir}/up.bin", str(local_tmp / "down.bin"))
    assert (local_tmp / "down.bin").read_bytes() == source.read_bytes()
