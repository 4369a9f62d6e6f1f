"""The NameNode's namespace API on the wire: every error case answers the right status and JSON body."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from client.protocol.client_namenode import Routes
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster


@pytest.fixture()
def api(cluster: MiniCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=30.0, headers={"X-DFS-User": "tester"}) as http:
        yield http


def post(api: httpx.Client, route: str, body: dict[str, Any]) -> httpx.Response:
    return api.post(route, json=body)


def assert_error(response: httpx.Response, status: int, code: str, errno: int, *, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "errno", "message", "path"}
    assert body["code"] == code
    assert body["errno"] == errno
    assert mentions in body["message"]


def create(api: httpx.Client, path: str, client: str = "client-a", **extra: Any) -> httpx.Response:
    return post(api, Routes.CREATE, {"path": path, "client_name": client, **extra})


def make_file(api: httpx.Client, path: str) -> int:
    response = create(api, path)
    assert response.status_code == 200, response.text
    file_id = response.json()["file_id"]
    done = post(api, Routes.COMPLETE, {"path": path, "file_id": file_id, "client_name": "client-a"}).json()
    assert done["completed"] is True
    # The closed file's status comes with the answer.
    assert (done["status"]["path"], done["status"]["length"], done["status"]["under_construction"]) == (path, 0, False)
    return int(file_id)


@pytest.mark.parametrize(
    ("path", "mentions"),
    [
        ("relative/path", "absolute"),
        ("/a//b", "empty component"),
        ("/a/b/", "empty component"),
        ("/a/./b", "'.'"),
        ("/a/../b", "'..'"),
        ("/a/b\x00c", "NUL"),
        ("/" + "x" * 256, "255 bytes"),
        ("/" + "é" * 128, "255 bytes"),  # 256 UTF-8 bytes
        ("/" + "a/" * 2100 + "a", "4096 bytes"),
    ],
)
def test_invalid_paths_are_rejected(api: httpx.Client, path: str, mentions: str) -> None:
    assert_error(api.get(Routes.STATUS, params={"path": path}), 400, "INVALID_PATH", 22, mentions=mentions)
    assert_error(post(api, Routes.MKDIRS, {"path": path}), 400, "INVALID_PATH", 22, mentions=mentions)


def test_missing_paths(api: httpx.Client, remote_dir: str) -> None:
    missing = f"{remote_dir}/nope"
    assert_error(api.get(Routes.STATUS, params={"path": missing}), 404, "FILE_NOT_FOUND", 2, mentions="does not exist")
    assert_error(api.get(Routes.LIST, params={"path": missing}), 404, "FILE_NOT_FOUND", 2)
    assert_error(api.get(Routes.LOCATIONS, params={"path": missing}), 404, "FILE_NOT_FOUND", 2)
    assert_error(post(api, Routes.DELETE, {"path": missing}), 404, "FILE_NOT_FOUND", 2)
    assert_error(post(api, Routes.RENAME, {"src": missing, "dst": f"{remote_dir}/x"}), 404, "FILE_NOT_FOUND", 2)
    assert_error(post(api, Routes.MKDIRS, {"path": f"{missing}/child", "parents": False}), 404, "FILE_NOT_FOUND", 2)
    assert_error(create(api, f"{missing}/f", create_parents=False), 404, "FILE_NOT_FOUND", 2)


def test_files_are_not_directories(api: httpx.Client, remote_dir: str) -> None:
    make_file(api, f"{remote_dir}/file")
    assert_error(post(api, Routes.MKDIRS, {"path": f"{remote_dir}/file"}), 409, "FILE_EXISTS", 17)
    assert_error(post(api, Routes.MKDIRS, {"path": f"{remote_dir}/file/sub"}), 400, "NOT_A_DIRECTORY", 20)
    assert_error(create(api, f"{remote_dir}/file/child"), 400, "NOT_A_DIRECTORY", 20)
    assert_error(api.get(Routes.STATUS, params={"path": f"{remote_dir}/file/x"}), 400, "NOT_A_DIRECTORY", 20)
    assert post(api, Routes.MKDIRS, {"path": f"{remote_dir}/dir"}).status_code == 200
    assert_error(create(api, f"{remote_dir}/dir"), 400, "IS_A_DIRECTORY", 21)
    assert_error(api.get(Routes.LOCATIONS, params={"path": remote_dir}), 400, "IS_A_DIRECTORY", 21)
    listing = api.get(Routes.LIST, params={"path": f"{remote_dir}/file"}).json()
    assert [entry["name"] for entry in listing["entries"]] == ["file"]


def test_create_semantics(api: httpx.Client, remote_dir: str) -> None:
    path = f"{remote_dir}/f"
    make_file(api, path)
    assert_error(create(api, path), 409, "FILE_EXISTS", 17)
    assert create(api, path, overwrite=True).status_code == 200
    # Now under construction by client-a: another client may not take it over.
    assert_error(create(api, path, client="client-b", overwrite=True), 409, "LEASE_CONFLICT", 16)
    assert_error(create(api, f"{remote_dir}/bad", block_size=1000), 400, "INVALID_ARGUMENT", 22, mentions="block size")
    assert_error(create(api, f"{remote_dir}/bad", replication=0), 400, "INVALID_ARGUMENT", 22)
    assert_error(create(api, f"{remote_dir}/bad", replication=513), 400, "INVALID_ARGUMENT", 22)


def test_writes_need_the_lease(api: httpx.Client, remote_dir: str) -> None:
    path = f"{remote_dir}/leased"
    file_id = create(api, path).json()["file_id"]
    body = {"path": path, "file_id": file_id, "client_name": "intruder"}
    assert_error(post(api, Routes.ADD_BLOCK, body), 409, "LEASE_EXPIRED", 116, mentions="client-a")
    assert_error(post(api, Routes.COMPLETE, body), 409, "LEASE_EXPIRED", 116)
    done = post(api, Routes.COMPLETE, {**body, "client_name": "client-a"})
    assert done.json()["completed"] is True
    assert_error(post(api, Routes.ADD_BLOCK, {**body, "client_name": "client-a"}), 409, "LEASE_EXPIRED", 116)


def test_rename_rules(api: httpx.Client, remote_dir: str) -> None:
    post(api, Routes.MKDIRS, {"path": f"{remote_dir}/d/sub"})
    make_file(api, f"{remote_dir}/f1")
    make_file(api, f"{remote_dir}/f2")
    make_file(api, f"{remote_dir}/d/sub/inner")

    def rename(src: str, dst: str, **kw: Any) -> httpx.Response:
        return post(api, Routes.RENAME, {"src": src, "dst": dst, **kw})

    assert_error(
        rename(f"{remote_dir}/d", f"{remote_dir}/d/sub/x"), 400, "INVALID_ARGUMENT", 22, mentions="under itself"
    )
    assert_error(rename(f"{remote_dir}/f1", f"{remote_dir}/f2"), 409, "FILE_EXISTS", 17)
    assert_error(rename(f"{remote_dir}/f1", f"{remote_dir}/d", overwrite=True), 400, "IS_A_DIRECTORY", 21)
    assert_error(rename(f"{remote_dir}/d", f"{remote_dir}/f1", overwrite=True), 400, "NOT_A_DIRECTORY", 20)
    post(api, Routes.MKDIRS, {"path": f"{remote_dir}/e/full"})
    assert_error(rename(f"{remote_dir}/d", f"{remote_dir}/e", overwrite=True), 409, "DIRECTORY_NOT_EMPTY", 39)
    assert_error(rename(f"{remote_dir}/f1", f"{remote_dir}/missing/f1"), 404, "FILE_NOT_FOUND", 2)
    assert_error(rename("/", f"{remote_dir}/root"), 400, "INVALID_ARGUMENT", 22)
    # The good cases: replace a file, move a tree (its contents move with it).
    assert rename(f"{remote_dir}/f1", f"{remote_dir}/f2", overwrite=True).status_code == 200
    assert rename(f"{remote_dir}/d", f"{remote_dir}/e/moved").json()["path"] == f"{remote_dir}/e/moved"
    inner = api.get(Routes.STATUS, params={"path": f"{remote_dir}/e/moved/sub/inner"})
    assert inner.status_code == 200
    assert rename(f"{remote_dir}/f2", f"{remote_dir}/f2").status_code == 200


def test_delete_rules(api: httpx.Client, remote_dir: str) -> None:
    post(api, Routes.MKDIRS, {"path": f"{remote_dir}/tree/a/b"})
    make_file(api, f"{remote_dir}/tree/a/b/f")
    assert_error(post(api, Routes.DELETE, {"path": f"{remote_dir}/tree"}), 409, "DIRECTORY_NOT_EMPTY", 39)
    assert_error(post(api, Routes.DELETE, {"path": "/", "recursive": True}), 400, "INVALID_ARGUMENT", 22)
    result = post(api, Routes.DELETE, {"path": f"{remote_dir}/tree", "recursive": True}).json()
    assert result == {"files": 1, "directories": 3, "blocks": 0}
    assert api.get(Routes.STATUS, params={"path": f"{remote_dir}/tree"}).status_code == 404


def test_mkdir_semantics(api: httpx.Client, remote_dir: str) -> None:
    assert post(api, Routes.MKDIRS, {"path": f"{remote_dir}/m/n"}).status_code == 200
    assert post(api, Routes.MKDIRS, {"path": f"{remote_dir}/m/n"}).status_code == 200  # -p: idempotent
    assert_error(post(api, Routes.MKDIRS, {"path": f"{remote_dir}/m/n", "parents": False}), 409, "FILE_EXISTS", 17)
    status = api.get(Routes.STATUS, params={"path": f"{remote_dir}/m/n"}).json()
    assert status["type"] == "directory"
    assert status["owner"] == "tester"


def test_listing_is_paged_in_name_order(api: httpx.Client, remote_dir: str) -> None:
    names = [*sorted(f"n{i:03d}" for i in range(25)), "Zed", "ä-umlaut", "space name"]
    for name in names:
        post(api, Routes.MKDIRS, {"path": f"{remote_dir}/{name}"})
    seen: list[str] = []
    start_after = ""
    while True:
        page = api.get(Routes.LIST, params={"path": remote_dir, "start_after": start_after, "limit": 7}).json()
        seen += [entry["name"] for entry in page["entries"]]
        if not page["has_more"]:
            break
        start_after = page["entries"][-1]["name"]
    assert seen == sorted(names, key=lambda n: n.encode())
    assert_error(api.get(Routes.LIST, params={"path": remote_dir, "limit": 0}), 400, "INVALID_ARGUMENT", 22)


def test_malformed_requests(api: httpx.Client, remote_dir: str) -> None:
    bad_json = api.post(Routes.MKDIRS, content=b"{not json", headers={"content-type": "application/json"})
    assert_error(bad_json, 400, "INVALID_ARGUMENT", 22)
    assert_error(
        post(api, Routes.MKDIRS, {"path": remote_dir, "surprise": 1}), 400, "INVALID_ARGUMENT", 22, mentions="surprise"
    )
    assert_error(post(api, Routes.MKDIRS, {}), 400, "INVALID_ARGUMENT", 22, mentions="path")
    assert_error(api.get(Routes.LOCATIONS, params={"path": remote_dir, "offset": "x"}), 400, "INVALID_ARGUMENT", 22)
    assert_error(api.get(Routes.LOCATIONS, params={"path": remote_dir, "offset": -1}), 400, "INVALID_ARGUMENT", 22)
    assert_error(post(api, Routes.SET_REPLICATION, {"path": remote_dir, "replication": 0}), 400, "INVALID_ARGUMENT", 22)
    unknown = api.get("/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "NOT_SUPPORTED"
    wrong_method = api.get(Routes.MKDIRS)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "NOT_SUPPORTED"


def test_set_replication(api: httpx.Client, remote_dir: str) -> None:
    path = f"{remote_dir}/r"
    make_file(api, path)
    response = post(api, Routes.SET_REPLICATION, {"path": path, "replication": 2})
    assert response.json()["replication"] == 2
    assert_error(post(api, Routes.SET_REPLICATION, {"path": remote_dir, "replication": 2}), 400, "IS_A_DIRECTORY", 21)


def test_unique_names(api: httpx.Client, remote_dir: str) -> None:
    top = f"{remote_dir}/unique-{uuid.uuid4().hex[:6]}"
    for suffix in ("a", "b", "a"):
        post(api, Routes.MKDIRS, {"path": f"{top}/{suffix}"})
    names = [e["name"] for e in api.get(Routes.LIST, params={"path": top}).json()["entries"]]
    assert names == ["a", "b"]
