"""The `dfs` shell as a user runs it: real subprocesses against the MiniCluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from namenode.db.schema import current_os_user
from tests.minicluster import MiniCluster

pytestmark = pytest.mark.cluster


def dfs(
    cluster: MiniCluster, *args: str, stdin: bytes | None = None, user: str = "alice"
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DFS_NAMENODE": cluster.url, "DFS_USER": user}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args], input=stdin, capture_output=True, env=env, timeout=120
    )


def ok(cluster: MiniCluster, *args: str, user: str = "alice") -> str:
    result = dfs(cluster, *args, user=user)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def fails(cluster: MiniCluster, *args: str, code: int = 1) -> str:
    result = dfs(cluster, *args)
    stderr = result.stderr.decode()
    assert result.returncode == code, (result.returncode, stderr)
    assert "Traceback" not in stderr
    return stderr


def test_file_commands_round_trip(cluster: MiniCluster, remote_dir: str, tmp_path: Path) -> None:
    local = tmp_path / "data.bin"
    local.write_bytes(os.urandom(300_000))
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")

    ok(cluster, "mkdir", "-p", f"{remote_dir}/x/y")
    ok(cluster, "put", str(local), f"{remote_dir}/x/")
    ok(cluster, "put", "--replication", "2", str(tree), f"{remote_dir}/tree")
    assert ok(cluster, "ls", f"{remote_dir}/x").split() == [f"{remote_dir}/x/data.bin", f"{remote_dir}/x/y"]
    long_line = ok(cluster, "ls", "-l", f"{remote_dir}/x/data.bin")
    assert long_line.startswith("-rw-r--r--   3 alice")
    assert "300000" in long_line
    recursive = ok(cluster, "ls", "-R", f"{remote_dir}/tree").split()
    assert recursive == [f"{remote_dir}/tree/a.txt", f"{remote_dir}/tree/sub", f"{remote_dir}/tree/sub/b.txt"]
    assert ok(cluster, "cat", f"{remote_dir}/tree/a.txt", f"{remote_dir}/tree/sub/b.txt") == "alpha\nbeta\n"

    status = json.loads(ok(cluster, "stat", "--json", f"{remote_dir}/tree/a.txt"))
    assert (status["length"], status["replication"], status["owner"]) == (6, 2, "alice")
    assert "replication:        2" in ok(cluster, "stat", f"{remote_dir}/tree/a.txt")

    ok(cluster, "get", f"{remote_dir}/x/data.bin", str(tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").read_bytes() == local.read_bytes()
    ok(cluster, "get", f"{remote_dir}/tree", str(tmp_path / "tree-copy"))
    assert (tmp_path / "tree-copy" / "sub" / "b.txt").read_text() == "beta\n"

    ok(cluster, "mv", f"{remote_dir}/x/data.bin", f"{remote_dir}/x/y")  # into an existing directory
    ok(cluster, "setrep", "-w", "--timeout", "60", "2", f"{remote_dir}/x/y/data.bin")
    assert json.loads(ok(cluster, "stat", "--json", f"{remote_dir}/x/y/data.bin"))["replication"] == 2
    ok(cluster, "rm", "-r", f"{remote_dir}/x")
    ok(cluster, "rm", "-f", f"{remote_dir}/x")
    assert ok(cluster, "ls", remote_dir).split() == [f"{remote_dir}/tree"]

    ok(cluster, "put", str(local), f"{remote_dir}/new/")  # a trailing slash means "into this directory"
    assert ok(cluster, "ls", f"{remote_dir}/new").split() == [f"{remote_dir}/new/data.bin"]
    ok(cluster, "setrep", "1", f"{remote_dir}/tree")  # a directory: every file under it
    for name in ("a.txt", "sub/b.txt"):
        assert json.loads(ok(cluster, "stat", "--json", f"{remote_dir}/tree/{name}"))["replication"] == 1


def test_report_json_lists_datanodes(cluster: MiniCluster) -> None:
    report = json.loads(ok(cluster, "report", "--json"))
    assert report["live_datanodes"] == len(report["datanodes"]) >= 3
    for node in report["datanodes"]:
        assert {"id", "url", "rack", "state", "capacity", "used", "blocks"} <= set(node)
    assert "DataNodes:" in ok(cluster, "report")


def test_errors_are_one_line_and_non_zero(cluster: MiniCluster, remote_dir: str, tmp_path: Path) -> None:
    ok(cluster, "mkdir", f"{remote_dir}/d")
    (tmp_path / "f").write_text("x")
    ok(cluster, "put", str(tmp_path / "f"), f"{remote_dir}/f")
    cases = [
        (("ls", f"{remote_dir}/missing"), "does not exist"),
        (("cat", f"{remote_dir}/d"), "is a directory"),
        (("mkdir", f"{remote_dir}/f"), "not a directory"),
        (("mkdir", f"{remote_dir}/d"), "already exists"),
        (("rm", f"{remote_dir}/missing"), "does not exist"),
        (("put", str(tmp_path / "f"), f"{remote_dir}/f"), "already exists"),
        (("put", str(tmp_path / "nope"), f"{remote_dir}/g"), "no such local file"),
        (("rm", remote_dir), "is a directory (use -r"),
        (("mv", f"{remote_dir}/d", f"{remote_dir}/d/inside"), "under itself"),
        (("setrep", "1000", f"{remote_dir}/f"), "replication: Input should be less than or equal to 512"),
        (("ls", "/" + "x" * 300), "longer than 255 bytes"),
    ]
    for args, message in cases:
        stderr = fails(cluster, *args)
        assert stderr.count("\n") == 1 and stderr.startswith("dfs: "), stderr
        assert message in stderr, (args, stderr)


def test_usage_errors_and_unreachable_namenode(cluster: MiniCluster) -> None:
    assert "No such option" in fails(cluster, "ls", "--bogus", code=2)
    assert "needs at least one source" in fails(cluster, "mv", "/only-one", code=2)
    env = {**os.environ, "DFS_NAMENODE": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "client.cli", "ls", "/"], capture_output=True, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode().startswith("dfs: cannot reach http://127.0.0.1:9")


def test_cat_writes_binary_and_stops_quietly_on_a_closed_pipe(cluster: MiniCluster, remote_dir: str) -> None:
    data = bytes(range(256)) * 40_000
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/bin", data)
    assert dfs(cluster, "cat", f"{remote_dir}/bin").stdout == data
    env = {**os.environ, "DFS_NAMENODE": cluster.url}
    pipeline = subprocess.run(
        f"{sys.executable} -m client.cli cat {remote_dir}/bin | head -c 10 > /dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        env=env,
        timeout=60,
        text=True,
    )
    assert pipeline.stdout.strip() in ("0", "141")  # 0 if everything fit in the pipe before head exited
    assert "Traceback" not in pipeline.stderr


def test_append_concat_checksum_du_count_chmod_chown(cluster: MiniCluster, remote_dir: str, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.write_bytes(b"one\n")
    second.write_bytes(b"two\n")
    ok(cluster, "put", str(first), f"{remote_dir}/log")
    ok(cluster, "append", str(second), str(first), f"{remote_dir}/log")
    result = dfs(cluster, "append", "-", f"{remote_dir}/log", stdin=b"stdin\n")
    assert result.returncode == 0, result.stderr.decode()
    assert ok(cluster, "cat", f"{remote_dir}/log") == "one\ntwo\none\nstdin\n"
    assert "does not exist" in fails(cluster, "append", str(first), f"{remote_dir}/missing")

    ok(cluster, "put", str(second), f"{remote_dir}/tail")
    assert ok(cluster, "concat", f"{remote_dir}/log", f"{remote_dir}/tail").strip().endswith("22 bytes")
    assert "does not exist" in fails(cluster, "stat", f"{remote_dir}/tail")

    line = ok(cluster, "checksum", f"{remote_dir}/log").split("\t")
    assert line[0] == f"{remote_dir}/log" and line[1].endswith("MD5-of-512CRC32C") and len(line[2].strip()) == 56

    ok(cluster, "mkdir", "-p", f"{remote_dir}/d/e")
    assert ok(cluster, "count", remote_dir).split() == ["3", "1", "22", remote_dir]
    du_lines = [row.split() for row in ok(cluster, "du", remote_dir).splitlines()]
    assert du_lines == [["0", "0", f"{remote_dir}/d"], ["22", "66", f"{remote_dir}/log"]]
    assert ok(cluster, "du", "-s", remote_dir).split() == ["22", "66", remote_dir]

    ok(cluster, "chmod", "-R", "700", f"{remote_dir}/d")
    assert ok(cluster, "ls", "-l", f"{remote_dir}/d").startswith("drwx------")
    ok(cluster, "chown", "bob:staff", f"{remote_dir}/log", user=current_os_user())  # giving files away: superuser
    ok(cluster, "chown", ":wheel", f"{remote_dir}/log", user=current_os_user())
    status = json.loads(ok(cluster, "stat", "--json", f"{remote_dir}/log"))
    assert (status["owner"], status["group"], status["mode"]) == ("bob", "wheel", 0o644)
    assert "octal" in fails(cluster, "chmod", "rwx", f"{remote_dir}/log", code=2)
