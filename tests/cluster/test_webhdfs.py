"""WebHDFS REST API v1 on the wire: Hadoop's bodies, status codes, redirects and quirks."""

from __future__ import annotations

import asyncio
import getpass
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server_common.webhdfs import Caller, DataOps
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster

BLOCK = 64 * 1024
FILE_STATUS_FIELDS = {
    "accessTime",
    "blockSize",
    "childrenNum",
    "fileId",
    "group",
    "length",
    "modificationTime",
    "owner",
    "pathSuffix",
    "permission",
    "replication",
    "storagePolicy",
    "type",
}


@pytest.fixture()
def web(cluster: MiniCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=60.0) as http:
        yield http


def url(path: str) -> str:
    return "/webhdfs/v1" + path


def call(web: httpx.Client, method: str, path: str, op: str, **params: Any) -> httpx.Response:
    return web.request(method, url(path), params={"op": op, "user.name": "alice", **params})


def put_file(web: httpx.Client, path: str, data: bytes, **params: Any) -> httpx.Response:
    """Hadoop's two-step CREATE: the NameNode redirects, the DataNode takes the bytes."""
    first = call(web, "PUT", path, "CREATE", **params)
    assert first.status_code == 307, first.text
    return httpx.put(first.headers["location"], content=data, timeout=60.0)


def read_file(web: httpx.Client, path: str, **params: Any) -> httpx.Response:
    first = call(web, "GET", path, "OPEN", **params)
    assert first.status_code == 307, first.text
    return httpx.get(first.headers["location"], timeout=60.0)


def assert_remote_exception(response: httpx.Response, status: int, exception: str, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["RemoteException"]
    assert body["exception"] == exception
    assert body["javaClassName"].endswith("." + exception)
    assert mentions in body["message"]


def test_create_redirects_to_a_datanode_which_answers_201(
    cluster: MiniCluster, web: httpx.Client, remote_dir: str
) -> None:
    data = os.urandom(3 * BLOCK + 5)
    first = call(web, "PUT", f"{remote_dir}/f", "CREATE", blocksize=BLOCK, replication=2, permission="640")
    assert first.status_code == 307
    location = httpx.URL(first.headers["location"])
    datanode_urls = {httpx.URL(node["url"]).netloc for node in cluster.admin("GET", "/v1/cluster/report")["datanodes"]}
    assert location.netloc in datanode_urls  # the bytes go to a DataNode, not the NameNode
    assert location.params["op"] == "CREATE"
    assert location.params["user.name"] == "alice"
    second = httpx.put(str(location), content=data)
    assert second.status_code == 201, second.text
    status = call(web, "GET", f"{remote_dir}/f", "GETFILESTATUS").json()["FileStatus"]
    assert set(status) == FILE_STATUS_FIELDS
    assert status["length"] == len(data)
    assert (status["owner"], status["permission"], status["replication"], status["blockSize"]) == (
        "alice",
        "640",
        2,
        BLOCK,
    )
    assert (status["type"], status["pathSuffix"]) == ("FILE", "")
    got = read_file(web, f"{remote_dir}/f")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.content == data


def test_chunked_upload_and_ranged_reads(web: httpx.Client, remote_dir: str) -> None:
    data = os.urandom(5 * BLOCK + 123)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(data), 10_000):
            yield data[start : start + 10_000]

    first = call(web, "PUT", f"{remote_dir}/chunked", "CREATE", blocksize=BLOCK)
    second = httpx.put(first.headers["location"], content=pieces())  # Transfer-Encoding: chunked
    assert second.status_code == 201
    for offset, length in [(0, 10), (BLOCK - 3, 7), (2 * BLOCK, 3 * BLOCK + 123), (len(data) - 1, 100)]:
        got = read_file(web, f"{remote_dir}/chunked", offset=offset, length=length)
        assert got.content == data[offset : offset + length]
    assert read_file(web, f"{remote_dir}/chunked", offset=len(data)).content == b""
    beyond = read_file(web, f"{remote_dir}/chunked", offset=len(data) + 1)
    assert_remote_exception(beyond, 400, "IllegalArgumentException", "out of the range")


def test_noredirect_returns_the_location_as_json(web: httpx.Client, remote_dir: str) -> None:
    answer = call(web, "PUT", f"{remote_dir}/n", "CREATE", noredirect="true")
    assert answer.status_code == 200
    location = answer.json()["Location"]
    assert httpx.put(location, content=b"hello").status_code == 201
    opened = call(web, "GET", f"{remote_dir}/n", "OPEN", noredirect="true").json()["Location"]
    assert httpx.get(opened).content == b"hello"


def test_append_creates_new_data_at_the_end(web: httpx.Client, remote_dir: str) -> None:
    path = f"{remote_dir}/a"
    assert put_file(web, path, b"").status_code == 201  # fsspec creates empty, then appends
    for piece in (b"one,", b"two,", b"three"):
        first = call(web, "POST", path, "APPEND")
        assert first.status_code == 307
        assert httpx.post(first.headers["location"], content=piece).status_code == 200
    assert read_file(web, path).content == b"one,two,three"
    missing = call(web, "POST", f"{remote_dir}/missing", "APPEND")
    assert_remote_exception(missing, 404, "FileNotFoundException", "does not exist")


def test_errors_are_remote_exceptions(web: httpx.Client, remote_dir: str) -> None:
    missing = call(web, "GET", f"{remote_dir}/nope", "GETFILESTATUS")
    assert_remote_exception(missing, 404, "FileNotFoundException", "does not exist")
    put_file(web, f"{remote_dir}/exists", b"x")
    again = put_file(web, f"{remote_dir}/exists", b"y")
    assert_remote_exception(again, 403, "FileAlreadyExistsException")
    assert put_file(web, f"{remote_dir}/exists", b"z", overwrite="true").status_code == 201
    wrong_method = call(web, "GET", remote_dir, "MKDIRS")
    assert_remote_exception(wrong_method, 400, "IllegalArgumentException", 'Invalid value for webhdfs parameter "op"')
    unknown = call(web, "GET", remote_dir, "FROBNICATE")
    assert_remote_exception(unknown, 400, "IllegalArgumentException", 'Invalid value for webhdfs parameter "op"')
    snapshot = call(web, "PUT", remote_dir, "CREATESNAPSHOT")
    assert_remote_exception(snapshot, 400, "UnsupportedOperationException", "CREATESNAPSHOT is not supported")
    bad_bool = call(web, "DELETE", remote_dir, "DELETE", recursive="maybe")
    assert_remote_exception(bad_bool, 400, "IllegalArgumentException", '"recursive"')
    bad_path = web.get("/webhdfs/v1/a/../b", params={"op": "GETFILESTATUS"})
    assert bad_path.status_code in (400, 404)
    assert call(web, "PUT", f"{remote_dir}/full/x", "MKDIRS").json() == {"boolean": True}
    not_empty = call(web, "DELETE", f"{remote_dir}/full", "DELETE", recursive="false")
    assert_remote_exception(not_empty, 403, "PathIsNotEmptyDirectoryException")
    open_dir = call(web, "GET", remote_dir, "OPEN")
    assert_remote_exception(open_dir, 404, "FileNotFoundException", "not a file")
    # A directory alice may write over (HDFS checks permissions first: over remote_dir itself, w on /t is missing).
    over_dir = put_file(web, f"{remote_dir}/full", b"x", overwrite="true")
    assert_remote_exception(over_dir, 403, "FileAlreadyExistsException")


def test_client_quirks(web: httpx.Client, remote_dir: str) -> None:
    # Booleans in any case, unknown parameters ignored, user.name twice (the first wins).
    answer = web.put(
        url(f"{remote_dir}/q/r"),
        params=[("op", "mkdirs"), ("user.name", "carol"), ("user.name", "mallory"), ("fsspec_extra", "1")],
    )
    assert answer.json() == {"boolean": True}
    assert call(web, "GET", f"{remote_dir}/q/r", "GETFILESTATUS").json()["FileStatus"]["owner"] == "carol"
    # carol's directories (rwxr-xr-x): only she may empty them.
    assert call(web, "DELETE", f"{remote_dir}/q", "DELETE", recursive="True", **{"user.name": "carol"}).json() == {
        "boolean": True
    }
    # The root without a trailing slash, and a trailing slash on a directory.
    root = web.get("/webhdfs/v1", params={"op": "GETFILESTATUS"})
    assert root.json()["FileStatus"]["type"] == "DIRECTORY"
    assert web.get(url(remote_dir + "/"), params={"op": "LISTSTATUS"}).status_code == 200
    # LISTSTATUS of a file: the file itself, with an empty pathSuffix.
    put_file(web, f"{remote_dir}/file", b"abc")
    listed = call(web, "GET", f"{remote_dir}/file", "LISTSTATUS").json()["FileStatuses"]["FileStatus"]
    assert [(entry["pathSuffix"], entry["length"]) for entry in listed] == [("", 3)]


def test_namespace_operations(web: httpx.Client, remote_dir: str) -> None:
    assert call(web, "PUT", f"{remote_dir}/d/e", "MKDIRS", permission="700").json() == {"boolean": True}
    assert call(web, "GET", f"{remote_dir}/d/e", "GETFILESTATUS").json()["FileStatus"]["permission"] == "700"
    put_file(web, f"{remote_dir}/d/f", b"12345")
    listing = call(web, "GET", f"{remote_dir}/d", "LISTSTATUS").json()["FileStatuses"]["FileStatus"]
    assert [(e["pathSuffix"], e["type"], e["childrenNum"]) for e in listing] == [
        ("e", "DIRECTORY", 0),
        ("f", "FILE", 0),
    ]
    # Old-style RENAME: into an existing directory; false, not an error, when it cannot.
    assert call(web, "PUT", f"{remote_dir}/d/f", "RENAME", destination=f"{remote_dir}/d/e").json() == {"boolean": True}
    assert call(web, "GET", f"{remote_dir}/d/e/f", "GETFILESTATUS").status_code == 200
    assert call(web, "PUT", f"{remote_dir}/nope", "RENAME", destination=f"{remote_dir}/x").json() == {"boolean": False}
    put_file(web, f"{remote_dir}/g", b"g")
    assert call(web, "PUT", f"{remote_dir}/g", "RENAME", destination=f"{remote_dir}/d/e/f").json() == {"boolean": False}
    overwrite = call(
        web, "PUT", f"{remote_dir}/g", "RENAME", destination=f"{remote_dir}/d/e/f", renameoptions="OVERWRITE"
    )
    assert overwrite.status_code == 200
    assert read_file(web, f"{remote_dir}/d/e/f").content == b"g"
    # Attributes.
    path = f"{remote_dir}/d/e/f"
    assert call(web, "PUT", path, "SETPERMISSION", permission="1750").status_code == 200
    superuser = {"user.name": getpass.getuser()}  # giving a file away takes the superuser
    assert call(web, "PUT", path, "SETOWNER", owner="bob", group="staff", **superuser).status_code == 200
    assert call(web, "PUT", path, "SETTIMES", modificationtime=1000, accesstime=2000, **superuser).status_code == 200
    assert call(web, "PUT", path, "SETREPLICATION", replication=2, **superuser).json() == {"boolean": True}
    assert call(web, "PUT", remote_dir, "SETREPLICATION", replication=2).json() == {"boolean": False}
    status = call(web, "GET", path, "GETFILESTATUS").json()["FileStatus"]
    assert (status["permission"], status["owner"], status["group"]) == ("1750", "bob", "staff")
    assert (status["modificationTime"], status["accessTime"], status["replication"]) == (1000, 2000, 2)
    no_owner = call(web, "PUT", path, "SETOWNER")
    assert_remote_exception(no_owner, 400, "IllegalArgumentException", "Both owner and group are empty")
    # Summaries and the DELETE answers.
    summary = call(web, "GET", remote_dir, "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert (summary["directoryCount"], summary["fileCount"], summary["length"]) == (3, 1, 1)
    assert (summary["quota"], summary["spaceQuota"], summary["spaceConsumed"]) == (-1, -1, 2)
    assert call(web, "DELETE", f"{remote_dir}/missing", "DELETE").json() == {"boolean": False}
    assert call(web, "DELETE", f"{remote_dir}/d", "DELETE", recursive="true").json() == {"boolean": True}


def test_liststatus_batch_pages_with_remaining_entries(web: httpx.Client, remote_dir: str) -> None:
    for index in range(5):
        call(web, "PUT", f"{remote_dir}/e{index}", "MKDIRS")
    # The page size is Hadoop's 1000; fake a small one by starting after names.
    body = call(web, "GET", remote_dir, "LISTSTATUS_BATCH", startAfter="e1").json()["DirectoryListing"]
    names = [entry["pathSuffix"] for entry in body["partialListing"]["FileStatuses"]["FileStatus"]]
    assert names == ["e2", "e3", "e4"]
    assert body["remainingEntries"] == 0


def test_server_defaults_home_and_locations(cluster: MiniCluster, web: httpx.Client, remote_dir: str) -> None:
    defaults = call(web, "GET", "/", "GETSERVERDEFAULTS").json()["FsServerDefaults"]
    assert defaults["checksumType"] == "CRC32C"
    assert defaults["bytesPerChecksum"] == 512
    assert defaults["replication"] >= 1
    assert call(web, "GET", "/", "GETHOMEDIRECTORY").json() == {"Path": "/user/alice"}
    assert call(web, "GET", "/", "GETTRASHROOT").json() == {"Path": "/user/alice/.Trash"}
    put_file(web, f"{remote_dir}/blocks", os.urandom(2 * BLOCK + 1), blocksize=BLOCK, replication=3)
    located = call(web, "GET", f"{remote_dir}/blocks", "GETFILEBLOCKLOCATIONS").json()["BlockLocations"]
    blocks = located["BlockLocation"]
    assert [(b["offset"], b["length"]) for b in blocks] == [(0, BLOCK), (BLOCK, BLOCK), (2 * BLOCK, 1)]
    for block in blocks:
        assert len(block["hosts"]) == 3
        assert all(name.startswith("127.0.0.1:") for name in block["names"])
        assert all(path.startswith("/rack") for path in block["topologyPaths"])
    ranged = call(web, "GET", f"{remote_dir}/blocks", "GETFILEBLOCKLOCATIONS", offset=BLOCK + 5, length=10)
    assert [b["offset"] for b in ranged.json()["BlockLocations"]["BlockLocation"]] == [BLOCK]
    fs_status = call(web, "GET", "/", "GETSTATUS").json()["FsStatus"]
    assert fs_status["capacity"] > 0


def test_concat_and_truncate(web: httpx.Client, remote_dir: str) -> None:
    put_file(web, f"{remote_dir}/t", b"head-", blocksize=BLOCK)
    put_file(web, f"{remote_dir}/s1", b"one-", blocksize=BLOCK)
    put_file(web, f"{remote_dir}/s2", b"two", blocksize=BLOCK)
    sources = f"{remote_dir}/s1,{remote_dir}/s2"
    assert call(web, "POST", f"{remote_dir}/t", "CONCAT", sources=sources).status_code == 200
    assert read_file(web, f"{remote_dir}/t").content == b"head-one-two"
    assert call(web, "GET", f"{remote_dir}/s1", "GETFILESTATUS").status_code == 404
    # "head-" is one block, "one-" the next: truncating to 9 falls on a block boundary.
    assert call(web, "POST", f"{remote_dir}/t", "TRUNCATE", newlength=9).json() == {"boolean": True}
    assert read_file(web, f"{remote_dir}/t").content == b"head-one-"
    longer = call(web, "POST", f"{remote_dir}/t", "TRUNCATE", newlength=100)
    assert_remote_exception(longer, 400, "IllegalArgumentException")


def test_users_and_doas(web: httpx.Client, remote_dir: str) -> None:
    anonymous = web.put(url(f"{remote_dir}/anon"), params={"op": "MKDIRS"})
    assert anonymous.json() == {"boolean": True}
    owner = call(web, "GET", f"{remote_dir}/anon", "GETFILESTATUS").json()["FileStatus"]["owner"]
    assert owner == "dr.who"
    refused = web.put(url(f"{remote_dir}/x"), params={"op": "MKDIRS", "user.name": "alice", "doas": "bob"})
    assert_remote_exception(refused, 403, "AuthorizationException", "not allowed to impersonate")
    superuser = getpass.getuser()
    allowed = web.put(url(f"{remote_dir}/y"), params={"op": "MKDIRS", "user.name": superuser, "doas": "bob"})
    assert allowed.json() == {"boolean": True}
    assert call(web, "GET", f"{remote_dir}/y", "GETFILESTATUS").json()["FileStatus"]["owner"] == "bob"


def test_checkaccess(web: httpx.Client, remote_dir: str) -> None:
    put_file(web, f"{remote_dir}/c", b"c", permission="640")
    assert call(web, "GET", f"{remote_dir}/c", "CHECKACCESS", fsaction="rw-").status_code == 200
    other = web.get(url(f"{remote_dir}/c"), params={"op": "CHECKACCESS", "fsaction": "r--", "user.name": "eve"})
    assert_remote_exception(other, 403, "AccessControlException", "Permission denied")
    bad = call(web, "GET", f"{remote_dir}/c", "CHECKACCESS", fsaction="rwz")
    assert_remote_exception(bad, 400, "IllegalArgumentException")


def test_safe_mode_is_a_safe_mode_exception(healthy_cluster: MiniCluster, web: httpx.Client, remote_dir: str) -> None:
    healthy_cluster.admin("POST", "/v1/admin/safemode", {"action": "enter"})
    try:
        refused = call(web, "PUT", f"{remote_dir}/sm", "MKDIRS")
        assert_remote_exception(refused, 403, "SafeModeException")
        assert call(web, "GET", remote_dir, "GETFILESTATUS").status_code == 200  # reads go on
    finally:
        healthy_cluster.admin("POST", "/v1/admin/safemode", {"action": "leave"})


def test_values_out_of_range_are_illegal_arguments(web: httpx.Client, remote_dir: str) -> None:
    put_file(web, f"{remote_dir}/v", b"v")
    for op, params in [
        ("SETREPLICATION", {"replication": "600"}),
        ("SETOWNER", {"owner": "a b"}),
        ("SETOWNER", {"group": "a:b"}),
    ]:
        answer = call(web, "PUT", f"{remote_dir}/v", op, **params)
        assert_remote_exception(answer, 400, "IllegalArgumentException", "Invalid value")
    huge = call(web, "POST", f"{remote_dir}/v", "TRUNCATE", newlength="99999999999999999999")
    assert_remote_exception(huge, 400, "IllegalArgumentException")


def test_a_failed_upload_is_recovered_at_once(web: httpx.Client, remote_dir: str) -> None:
    path = f"{remote_dir}/broken"
    first = call(web, "PUT", path, "CREATE", blocksize=BLOCK)

    def body() -> Iterator[bytes]:
        yield os.urandom(2 * BLOCK)  # two whole blocks, then the client goes away
        time.sleep(1.0)
        raise RuntimeError("client crashed")

    with pytest.raises(RuntimeError):
        httpx.put(first.headers["location"], content=body())
    # The DataNode's writer gave up and asked the NameNode to recover the file: it is closed
    # with the blocks that were finished, without waiting for the lease's hard limit.
    deadline = time.monotonic() + 30
    while True:
        got = call(web, "GET", path, "GETFILESTATUS")
        assert got.status_code == 200, got.text
        status = got.json()["FileStatus"]
        opened = call(web, "POST", path, "APPEND")
        if opened.status_code == 307 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert opened.status_code == 307, opened.text
    assert status["length"] in (0, BLOCK, 2 * BLOCK)


def test_data_ops_keep_a_bounded_number_of_idle_clients(cluster: MiniCluster) -> None:
    async def scenario() -> list[str]:
        ops = DataOps(cluster.url, max_idle_clients=2)
        try:
            for user in ("u1", "u2", "u3", "u4"):
                async with ops.client(Caller(user)) as fs:
                    assert (await fs.status("/")).is_dir
            return ops.users
        finally:
            await ops.close()

    assert asyncio.run(scenario()) == ["u3", "u4"]  # the least recently used idle ones were closed
