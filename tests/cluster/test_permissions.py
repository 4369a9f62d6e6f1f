"""Permissions end to end: what a user may not do is refused through the SDK, the shell and
WebHDFS (FUSE: tests/fuse/test_permissions.py), and allowed once granted.

The users' groups come from the static mapping every test cluster has (tests.minicluster
TEST_USER_GROUPS): alice and bob are in eng, carol in ops, opsadmin in supergroup. The tests
run as the OS user, the NameNode's superuser.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from client.protocol.client_namenode import AdminRoutes, Routes, SafeModeAction
from client.protocol.common import HEADER_USER
from client.protocol.errors import DfsFileNotFoundError, DfsPermissionError
from client.sync_client import DFSClient
from namenode.db.schema import current_os_user
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster


@pytest.fixture()
def users(cluster: MiniCluster) -> Iterator[dict[str, DFSClient]]:
    clients = {name: cluster.client(user=name, umask=0o022) for name in ("alice", "bob", "carol", "opsadmin")}
    clients["super"] = cluster.client(umask=0o022)
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


def denied(call: Any, *args: Any, **kwargs: Any) -> str:
    """The refusal's message (checked to be a DfsPermissionError with errno EACCES)."""
    with pytest.raises(DfsPermissionError) as caught:
        call(*args, **kwargs)
    assert caught.value.errno == errno.EACCES
    return caught.value.message


def test_a_stranger_can_neither_read_list_write_rename_nor_delete(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice, bob = users["alice"], users["bob"]
    private = f"{remote_dir}/private"
    alice.mkdirs(private, 0o700)
    alice.write_bytes(f"{private}/f", b"secret")
    message = denied(bob.status, f"{private}/f")
    assert message == f'Permission denied: user=bob, access=EXECUTE, inode="{private}":alice:supergroup:drwx------'
    assert "access=EXECUTE" in denied(bob.status, f"{private}/missing")  # no "does not exist" leaks either
    assert "access=READ_EXECUTE" in denied(bob.list, private)
    denied(bob.read_bytes, f"{private}/f")
    denied(bob.write_bytes, f"{private}/new", b"x")
    denied(bob.mkdirs, f"{private}/sub")
    denied(bob.rename, f"{private}/f", f"{remote_dir}/stolen")
    denied(bob.delete, f"{private}/f")
    denied(bob.delete, private, recursive=True)
    denied(bob.set_permission, private, 0o777)
    denied(bob.content_summary, private)
    # Granted bit by bit: r-x lets bob in to read, not to write.
    alice.set_permission(private, 0o755)
    assert [entry.name for entry in bob.list(private)] == ["f"]
    assert bob.read_bytes(f"{private}/f") == b"secret"
    assert "access=WRITE" in denied(bob.write_bytes, f"{private}/new", b"x")
    assert "access=WRITE" in denied(bob.append, f"{private}/f")
    denied(bob.set_replication, f"{private}/f", 2)
    denied(bob.truncate, f"{private}/f", 1)
    # w on the directory: bob may add, rename and delete entries (even alice's: no sticky bit).
    alice.set_permission(private, 0o777)
    bob.write_bytes(f"{private}/new", b"bob's")
    assert bob.status(f"{private}/new").owner == "bob"
    bob.rename(f"{private}/new", f"{private}/renamed")
    bob.delete(f"{private}/renamed")
    # A file given to bob (by the superuser): now his to write.
    users["super"].set_owner(f"{private}/f", "bob")
    bob.write_bytes(f"{private}/f", b"mine now", overwrite=True)
    assert alice.read_bytes(f"{private}/f") == b"mine now"


def test_overwriting_needs_write_on_the_file_itself(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice, bob = users["alice"], users["bob"]
    alice.write_bytes(f"{remote_dir}/keep", b"alice's")  # remote_dir is world-writable
    denied(bob.write_bytes, f"{remote_dir}/keep", b"bob's", overwrite=True)
    assert alice.read_bytes(f"{remote_dir}/keep") == b"alice's"
    alice.set_permission(f"{remote_dir}/keep", 0o666)
    bob.write_bytes(f"{remote_dir}/keep", b"bob's", overwrite=True)
    assert alice.status(f"{remote_dir}/keep").owner == "bob"


def test_sticky_directory_protects_other_users_entries(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    tmp = f"{remote_dir}/tmp"
    users["super"].mkdirs(tmp)
    users["super"].set_permission(tmp, 0o1777)
    users["super"].set_owner(tmp, "carol")
    alice.write_bytes(f"{tmp}/alices", b"a")
    alice.mkdirs(f"{tmp}/alices-dir")
    bob.write_bytes(f"{tmp}/bobs", b"b")
    message = denied(bob.delete, f"{tmp}/alices")
    assert message.startswith(f'Permission denied by sticky bit: user=bob, path="{tmp}/alices":alice:')
    assert message.endswith(f'parent="{tmp}":carol:supergroup:drwxrwxrwt')
    denied(bob.rename, f"{tmp}/alices", f"{tmp}/mine")
    denied(bob.delete, f"{tmp}/alices-dir", recursive=True)
    denied(bob.rename, f"{tmp}/bobs", f"{tmp}/alices", overwrite=True)  # replacing removes alice's
    bob.rename(f"{tmp}/bobs", f"{tmp}/bobs2")  # his own: fine
    bob.delete(f"{tmp}/bobs2")
    carol.delete(f"{tmp}/alices-dir")  # the directory's owner may
    alice.delete(f"{tmp}/alices")  # and so may the entry's
    assert [entry.name for entry in alice.list(tmp)] == []


def test_superuser_and_supergroup_bypass_every_check(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice = users["alice"]
    vault = f"{remote_dir}/vault"
    alice.mkdirs(vault)
    alice.write_bytes(f"{vault}/f", b"locked")
    alice.set_permission(f"{vault}/f", 0o000)
    alice.set_permission(vault, 0o000)
    denied(alice.read_bytes, f"{vault}/f")  # not even the owner, without r and x
    for admin in (users["super"], users["opsadmin"]):
        assert admin.read_bytes(f"{vault}/f") == b"locked"
        assert [entry.name for entry in admin.list(vault)] == ["f"]
    users["opsadmin"].set_owner(f"{vault}/f", "carol", "ops")
    assert users["super"].status(f"{vault}/f").owner == "carol"
    users["super"].delete(vault, recursive=True)
    with pytest.raises(DfsFileNotFoundError):
        users["super"].status(vault)


def test_groups_come_from_the_static_mapping(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    team = f"{remote_dir}/team"
    alice.mkdirs(team)
    assert alice.status(team).group == "supergroup"  # a new entry takes its parent's group (HDFS)
    alice.set_owner(team, group="eng")
    alice.set_permission(team, 0o770)
    bob.write_bytes(f"{team}/by-bob", b"b")  # bob is in eng
    assert bob.status(f"{team}/by-bob").group == "eng"
    assert "access=READ_EXECUTE" in denied(carol.list, team)  # carol is not
    assert denied(alice.set_owner, team, group="ops") == "User alice does not belong to ops"
    assert "is not the owner" in denied(bob.set_owner, team, group="eng")


def test_only_the_superuser_gives_files_away(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice, bob = users["alice"], users["bob"]
    alice.write_bytes(f"{remote_dir}/f", b"x")
    assert "non-super user cannot change owner" in denied(alice.set_owner, f"{remote_dir}/f", "bob")
    assert "is not the owner" in denied(bob.set_owner, f"{remote_dir}/f", "bob")
    assert "is not the owner" in denied(bob.set_permission, f"{remote_dir}/f", 0o777)
    denied(bob.set_times, f"{remote_dir}/f", mtime=1000)  # neither owner nor writer
    alice.set_owner(f"{remote_dir}/f", "alice", "eng")  # to herself and her own group: fine
    alice.set_times(f"{remote_dir}/f", mtime=1000)
    assert alice.status(f"{remote_dir}/f").mtime == 1000


def test_recursive_delete_needs_every_non_empty_directory(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice = users["alice"]
    top = f"{remote_dir}/top"
    alice.write_bytes(f"{top}/keep/f", b"x")
    alice.mkdirs(f"{top}/empty")
    alice.set_permission(f"{top}/empty", 0o500)  # an empty read-only directory does not block
    alice.set_permission(f"{top}/keep", 0o555)
    message = denied(alice.delete, top, recursive=True)
    assert f'access=ALL, inode="{top}/keep":alice:supergroup:dr-xr-xr-x' in message
    assert alice.read_bytes(f"{top}/keep/f") == b"x"  # nothing went
    alice.set_permission(f"{top}/keep", 0o755)
    assert alice.delete(top, recursive=True).files == 1


def test_content_summary_needs_read_on_every_directory(users: dict[str, DFSClient], remote_dir: str) -> None:
    alice, bob = users["alice"], users["bob"]
    alice.write_bytes(f"{remote_dir}/s/hidden/f", b"12345")
    assert bob.content_summary(f"{remote_dir}/s").length == 5
    alice.set_permission(f"{remote_dir}/s/hidden", 0o711)
    assert 'access=READ_EXECUTE, inode="' in denied(bob.content_summary, f"{remote_dir}/s")
    assert alice.content_summary(f"{remote_dir}/s").length == 5


def test_umask_shapes_new_modes(cluster: MiniCluster, remote_dir: str) -> None:
    with cluster.client(user="alice", umask=0o027) as alice:
        assert alice.mkdirs(f"{remote_dir}/d").mode == 0o750
        alice.write_bytes(f"{remote_dir}/d/f", b"x")
        assert alice.status(f"{remote_dir}/d/f").mode == 0o640
        # Implicit parents: the masked mode plus u+wx (HDFS), so the creator can go on.
        alice.mkdirs(f"{remote_dir}/d/a/b", 0o555)
        assert alice.status(f"{remote_dir}/d/a").mode == 0o750
        assert alice.status(f"{remote_dir}/d/a/b").mode == 0o550
        # A create's missing parents inherit the deepest existing ancestor's mode plus u+wx.
        alice.set_permission(f"{remote_dir}/d", 0o550)
        with cluster.client() as superuser:
            superuser.write_bytes(f"{remote_dir}/d/x/y/f", b"x")
            assert superuser.status(f"{remote_dir}/d/x").mode == 0o750
            assert superuser.status(f"{remote_dir}/d/x/y").mode == 0o750
    with cluster.client(user="alice", umask=0) as unmasked:
        assert unmasked.mkdirs(f"{remote_dir}/open").mode == 0o777


def test_umask_from_the_environment(cluster: MiniCluster, remote_dir: str) -> None:
    made = dfs(cluster, "mkdir", f"{remote_dir}/env", env={"DFS_UMASK": "077"})
    assert made.returncode == 0, made.stderr
    with cluster.client() as fs:
        assert fs.status(f"{remote_dir}/env").mode == 0o700
    bad = dfs(cluster, "mkdir", f"{remote_dir}/bad", env={"DFS_UMASK": "999"})
    assert bad.returncode == 1
    assert bad.stderr.strip() == "dfs: DFS_UMASK='999' is not an octal umask such as 022 or 077"


def test_admin_routes_need_the_superuser(cluster: MiniCluster) -> None:
    def admin(method: str, route: str, user: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {HEADER_USER: user}
        return httpx.request(method, cluster.url + route, json=body, headers=headers, timeout=30, verify=cluster.verify)

    for method, route, body in [
        ("POST", AdminRoutes.SAFEMODE, {"action": SafeModeAction.ENTER.value}),
        ("GET", AdminRoutes.FSCK, None),
        ("POST", AdminRoutes.BALANCER, {}),
        ("DELETE", AdminRoutes.BALANCER, None),
        ("POST", AdminRoutes.DECOMMISSION, {"datanode": "no-such-node"}),
        ("POST", AdminRoutes.RECOMMISSION, {"datanode": "no-such-node"}),
    ]:
        refused = admin(method, route, "alice", body)
        assert refused.status_code == 403, (route, refused.text)
        assert refused.json()["message"] == "Access denied for user alice. Superuser privilege is required"
    assert admin("GET", AdminRoutes.SAFEMODE, "alice").status_code == 200  # reading the state is open
    assert admin("GET", AdminRoutes.BALANCER, "alice").status_code == 200
    assert admin("GET", AdminRoutes.FSCK, "opsadmin").status_code == 200  # a supergroup member may
    assert admin("GET", Routes.CLUSTER_REPORT, "alice").status_code == 200


# --- the shell ---------------------------------------------------------------------------------


def dfs(
    cluster: MiniCluster, *args: str, user: str = "alice", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DFS_NAMENODE": cluster.url, "DFS_USER": user}
    full_env.pop("DFS_UMASK", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_the_shell_refuses_in_one_line_and_grants_with_chmod_chgrp_chown(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/notes"
    assert dfs(cluster, "mkdir", path).returncode == 0
    with cluster.client(user="alice", umask=0o022) as alice:
        alice.write_bytes(f"{path}/n.txt", b"hello\n")
    assert dfs(cluster, "chmod", "-R", "go-rwx", path).returncode == 0
    refused = dfs(cluster, "cat", f"{path}/n.txt", user="carol")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'dfs: Permission denied: user=carol, access=EXECUTE, inode="{path}":alice:supergroup:drwx------'
    )
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert dfs(cluster, "ls", path, user="carol").returncode == 1
    assert dfs(cluster, "rm", f"{path}/n.txt", user="carol").returncode == 1
    # Symbolic chmod, chgrp to a group of hers: bob (eng) gets in, carol (ops) still not.
    assert dfs(cluster, "chgrp", "-R", "eng", path).returncode == 0
    assert dfs(cluster, "chmod", "-R", "g+rX", path).returncode == 0
    assert dfs(cluster, "cat", f"{path}/n.txt", user="bob").stdout == "hello\n"
    assert dfs(cluster, "cat", f"{path}/n.txt", user="carol").returncode == 1
    refused_chgrp = dfs(cluster, "chgrp", "ops", path)
    assert refused_chgrp.returncode == 1 and "User alice does not belong to ops" in refused_chgrp.stderr
    refused_chown = dfs(cluster, "chown", "carol", path)
    assert refused_chown.returncode == 1 and "non-super user cannot change owner" in refused_chown.stderr
    # The superuser gives the whole tree to carol: now hers.
    assert dfs(cluster, "chown", "-R", "carol:ops", path, user=current_os_user()).returncode == 0
    assert dfs(cluster, "cat", f"{path}/n.txt", user="carol").stdout == "hello\n"
    listing = dfs(cluster, "ls", "-l", path, user="carol").stdout
    assert "carol" in listing and "ops" in listing and "-rw-r-----" in listing


# --- WebHDFS -----------------------------------------------------------------------------------


@pytest.fixture()
def web(cluster: MiniCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=60.0, verify=cluster.verify) as http:
        yield http


def webhdfs(web: httpx.Client, method: str, path: str, op: str, user: str, **params: Any) -> httpx.Response:
    return web.request(method, "/webhdfs/v1" + path, params={"op": op, "user.name": user, **params})


def assert_access_control(response: httpx.Response, mentions: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()["RemoteException"]
    assert body["exception"] == "AccessControlException"
    assert body["javaClassName"] == "org.apache.hadoop.security.AccessControlException"
    assert mentions in body["message"]


def test_webhdfs_refusals_are_access_control_exceptions(
    cluster: MiniCluster, users: dict[str, DFSClient], web: httpx.Client, remote_dir: str
) -> None:
    alice = users["alice"]
    private = f"{remote_dir}/w"  # rwxr-x--- alice:eng: bob (eng) may look, carol (ops) not
    alice.mkdirs(private, 0o750)
    alice.write_bytes(f"{private}/f", b"data")
    alice.set_permission(f"{private}/f", 0o640)
    alice.set_owner(private, group="eng")
    alice.set_owner(f"{private}/f", group="eng")
    assert_access_control(webhdfs(web, "GET", f"{private}/f", "GETFILESTATUS", "carol"), "user=carol, access=EXECUTE")
    assert_access_control(webhdfs(web, "GET", private, "LISTSTATUS", "carol"), "access=READ_EXECUTE")
    assert_access_control(webhdfs(web, "GET", f"{private}/f", "OPEN", "carol"), "access=EXECUTE")
    assert_access_control(webhdfs(web, "DELETE", f"{private}/f", "DELETE", "bob"), "access=WRITE")
    renamed = webhdfs(web, "PUT", f"{private}/f", "RENAME", "bob", destination=f"{remote_dir}/g")
    assert_access_control(renamed, "access=WRITE")
    assert_access_control(webhdfs(web, "PUT", f"{private}/d", "MKDIRS", "bob"), "access=WRITE")
    assert_access_control(
        webhdfs(web, "PUT", f"{private}/f", "SETPERMISSION", "bob", permission="777"), "not the owner"
    )
    # CREATE: the NameNode redirects; the DataNode's create is refused as the user.
    first = webhdfs(web, "PUT", f"{private}/new", "CREATE", "bob")
    assert first.status_code == 307
    created = httpx.put(first.headers["location"], content=b"x", timeout=60, verify=cluster.verify)
    assert_access_control(created, "user=bob, access=WRITE")
    # The group's r: bob may read; OPEN redirects and the DataNode streams as bob.
    opened = webhdfs(web, "GET", f"{private}/f", "OPEN", "bob")
    assert opened.status_code == 307
    assert httpx.get(opened.headers["location"], timeout=60, verify=cluster.verify).content == b"data"
    appending = webhdfs(web, "POST", f"{private}/f", "APPEND", "bob")
    assert appending.status_code == 307
    appended = httpx.post(appending.headers["location"], content=b"more", timeout=60, verify=cluster.verify)
    assert_access_control(appended, "user=bob, access=WRITE")


def test_webhdfs_checkaccess_asks_the_checker(users: dict[str, DFSClient], web: httpx.Client, remote_dir: str) -> None:
    alice = users["alice"]
    alice.mkdirs(f"{remote_dir}/c", 0o750)
    alice.set_owner(f"{remote_dir}/c", group="eng")
    assert webhdfs(web, "GET", f"{remote_dir}/c", "CHECKACCESS", "alice", fsaction="rwx").status_code == 200
    assert webhdfs(web, "GET", f"{remote_dir}/c", "CHECKACCESS", "bob", fsaction="r-x").status_code == 200  # group
    refused = webhdfs(web, "GET", f"{remote_dir}/c", "CHECKACCESS", "bob", fsaction="-w-")
    assert_access_control(refused, f'user=bob, access=WRITE, inode="{remote_dir}/c":alice:eng:drwxr-x---')
    assert_access_control(webhdfs(web, "GET", f"{remote_dir}/c", "CHECKACCESS", "carol", fsaction="r--"), "access=READ")
    missing = webhdfs(web, "GET", f"{remote_dir}/c/missing", "CHECKACCESS", "alice", fsaction="r--")
    assert missing.status_code == 404
