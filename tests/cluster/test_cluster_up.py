"""`dfs cluster up`, the README's first command, as a user runs it."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from client import DFSClient
from client.local_cluster import wait_until
from tests.minicluster import free_port

pytestmark = pytest.mark.cluster


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def cluster_up(base: Path, port: int, datanodes: int) -> tuple[subprocess.Popen[str], str]:
    """Start `dfs cluster up` and return it with everything it printed up to 'Press Ctrl-C'."""
    command = [
        sys.executable,
        "-m",
        "client.cli",
        "cluster",
        "up",
        "--datanodes",
        str(datanodes),
        "--base-dir",
        str(base),
        "--namenode-port",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    return process, "".join(lines)


def stop_everything(process: subprocess.Popen[str], base: Path) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    subprocess.run(["pkill", "-KILL", "-f", str(base)], check=False)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cluster_up_serves_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = free_port()
    base = tmp_path / "dfs"
    process, output = cluster_up(base, port, datanodes=2)
    try:
        assert f"NameNode    http://127.0.0.1:{port}" in output, output
        datanode_ports = [int(p) for p in re.findall(r"datanode\d+\s+http://127\.0\.0\.1:(\d+)", output)]
        assert len(datanode_ports) == 2
        with DFSClient(f"http://127.0.0.1:{port}") as fs:
            fs.write_bytes("/hello.txt", b"hello, cluster", replication=2)
            assert fs.read_bytes("/hello.txt") == b"hello, cluster"
            assert fs.report().live_datanodes == 2
        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0
        assert not any(port_open(p) for p in [port, *datanode_ports])
        children = subprocess.run(["pgrep", "-f", str(base)], capture_output=True, text=True)
        assert children.stdout.strip() == "", "server processes outlived `dfs cluster up`"
    finally:
        stop_everything(process, base)


def test_servers_exit_when_cluster_up_is_killed(tmp_path: Path) -> None:
    """kill -9 of the supervisor must not leave NameNode or DataNode processes behind."""
    base = tmp_path / "dfs"
    process, _ = cluster_up(base, free_port(), datanodes=1)
    try:
        servers = subprocess.run(["pgrep", "-f", f"data-dir {base}"], capture_output=True, text=True)
        assert len(servers.stdout.split()) == 2
        process.kill()
        process.wait()
        wait_until(
            lambda: subprocess.run(["pgrep", "-f", str(base)], capture_output=True).stdout == b"",
            30,
            "the servers to exit after their supervisor died",
        )
    finally:
        stop_everything(process, base)
