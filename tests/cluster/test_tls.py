"""TLS on every HTTP endpoint: a cluster with its own CA, reached by the SDK, the CLI, WebHDFS
and fsspec over https; clients without the CA, plain-HTTP clients and servers with bad
certificate files fail with one clear message."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import httpx
import pytest

from client import DFSClient
from client.protocol.client_namenode import DatanodeState
from client.protocol.errors import UnavailableError
from client.tls import CA_FILE_ENV
from client.tls_certs import make_certs
from tests.minicluster import MiniCluster, free_port, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    """A cluster with a CA of its own (not the DFS_TEST_TLS session's): only `ca_file` trusts it."""
    cluster = MiniCluster(tmp_path_factory.mktemp("tls"), datanodes=4, tls=True)
    try:
        cluster.start()
        with cluster.client() as fs:  # the superuser: a directory every test user may write
            fs.mkdirs("/tls")
            fs.set_permission("/tls", 0o777)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def no_default_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients get no CA from the environment (DFS_TEST_TLS=1 sets one for its own CA)."""
    monkeypatch.delenv(CA_FILE_ENV, raising=False)


def dfs(cluster: MiniCluster, *args: str, ca: bool = True) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != CA_FILE_ENV}
    env |= {"DFS_NAMENODE": cluster.url, "DFS_USER": "alice"}
    ca_args = ["--ca-file", str(cluster.ca_file)] if ca else []
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *ca_args, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_every_node_serves_https_and_data_round_trips_through_pipelines(tls_cluster: MiniCluster) -> None:
    cluster = tls_cluster
    assert cluster.url.startswith("https://")
    data = os.urandom(2 * BLOCK + 17)
    with cluster.client() as fs:
        assert {node.url.split("://")[0] for node in fs.report().datanodes} == {"https"}
        fs.write_bytes("/tls/pipelined", data, block_size=BLOCK, replication=3)
        located = fs.block_locations("/tls/pipelined").blocks
        assert [len(block.locations) for block in located] == [3, 3, 3]
        assert fs.read_bytes("/tls/pipelined") == data


def test_re_replication_after_a_datanode_is_killed(tls_cluster: MiniCluster) -> None:
    cluster = tls_cluster
    path = "/tls/healed"
    with cluster.client() as fs:
        fs.write_bytes(path, os.urandom(BLOCK + 5), block_size=BLOCK, replication=3)
        victim_id = fs.block_locations(path).blocks[0].locations[0].id
    victim = cluster.node_by_id(victim_id)
    cluster.kill_datanode(victim)
    try:

        def healed() -> bool:
            with cluster.client() as fs:
                state = {node.id: node.state for node in fs.report().datanodes}[victim_id]
                blocks = fs.block_locations(path).blocks
            return state is DatanodeState.DEAD and all(
                len(b.locations) == 3 and victim_id not in {n.id for n in b.locations} for b in blocks
            )

        wait_until(healed, 60, "re-replication between https DataNodes")
    finally:
        cluster.heal()


def test_webhdfs_redirects_to_https_datanodes(tls_cluster: MiniCluster) -> None:
    cluster = tls_cluster
    with httpx.Client(base_url=cluster.url, verify=cluster.verify, timeout=60.0) as web:
        query = {"op": "CREATE", "user.name": "alice"}
        first = web.put("/webhdfs/v1/tls/web.txt", params=query)
        assert first.status_code == 307, first.text
        location = first.headers["location"]
        datanodes = {httpx.URL(node.url).netloc for node in cluster.report().datanodes}
        assert location.startswith("https://") and httpx.URL(location).netloc in datanodes
        created = web.put(location, content=b"over tls")
        assert created.status_code == 201, created.text
        assert created.headers["location"].startswith("swebhdfs://")
        opened = web.get("/webhdfs/v1/tls/web.txt", params={"op": "OPEN", "user.name": "alice"})
        assert opened.status_code == 307 and opened.headers["location"].startswith("https://")
        assert web.get(opened.headers["location"]).content == b"over tls"


def test_webhdfs_proxy_mode_calls_datanodes_over_https(make_cluster: Callable[..., MiniCluster]) -> None:
    cluster = make_cluster(datanodes=1, tls=True, namenode_args=["--webhdfs-proxy", "--default-replication", "1"])
    with cluster.client() as fs:
        fs.mkdirs("/tmp")
        fs.set_permission("/tmp", 0o777)
    with httpx.Client(base_url=cluster.url, verify=cluster.verify, timeout=60.0, follow_redirects=True) as web:
        query = {"op": "CREATE", "user.name": "alice"}
        created = web.put("/webhdfs/v1/tmp/proxied.txt", params=query, content=b"through the NameNode")
        assert created.status_code == 201, created.text
        assert str(created.url).startswith(cluster.url)  # never sent to a DataNode
        opened = web.get("/webhdfs/v1/tmp/proxied.txt", params={"op": "OPEN", "user.name": "alice"})
        assert opened.content == b"through the NameNode"


def test_cli_with_and_without_the_ca(tls_cluster: MiniCluster, tmp_path: Path) -> None:
    local = tmp_path / "local.txt"
    text = "".join(f"line {n}\n" for n in range(20_000))
    local.write_text(text)
    put = dfs(tls_cluster, "put", str(local), "/tls/cli.txt")
    assert put.returncode == 0, put.stderr
    cat = dfs(tls_cluster, "cat", "/tls/cli.txt")
    assert (cat.returncode, cat.stdout) == (0, text), cat.stderr

    refused = dfs(tls_cluster, "ls", "/", ca=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "TLS certificate is not trusted" in refused.stderr and "--ca-file" in refused.stderr


def test_fsspec_dfs_urls_over_tls(tls_cluster: MiniCluster, no_default_ca: None) -> None:
    authority = tls_cluster.url.removeprefix("https://")
    url = f"dfs://{authority}/tls/fsspec.txt"
    with fsspec.open(url, "wb", ca_file=str(tls_cluster.ca_file)) as out:  # a CA file means https
        out.write(b"pandas would be here")
    with fsspec.open(url, "rb", tls=True, ca_file=str(tls_cluster.ca_file)) as src:
        assert src.read() == b"pandas would be here"
    plain = fsspec.filesystem("dfs", host="127.0.0.1", port=tls_cluster.namenode.port, skip_instance_cache=True)
    assert plain.namenode.startswith("http://")
    with pytest.raises(UnavailableError, match="https://"):
        plain.info("/tls/fsspec.txt")


def test_a_client_without_the_ca_is_refused_clearly(tls_cluster: MiniCluster, no_default_ca: None) -> None:
    with DFSClient(tls_cluster.url) as fs, pytest.raises(UnavailableError) as caught:
        fs.status("/")
    message = str(caught.value)
    assert message.startswith(f"cannot reach {tls_cluster.url}: its TLS certificate is not trusted")
    assert "certificate verify failed" in message or "unable to get local issuer" in message


def test_a_client_trusting_another_ca_is_refused(tls_cluster: MiniCluster, tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other")
    with DFSClient(tls_cluster.url, ca_file=other.ca_file) as fs, pytest.raises(UnavailableError, match="not trusted"):
        fs.status("/")


def test_plain_http_to_a_tls_port_fails_cleanly(tls_cluster: MiniCluster) -> None:
    plain_url = tls_cluster.url.replace("https://", "http://")
    with DFSClient(plain_url) as fs, pytest.raises(UnavailableError) as caught:
        fs.status("/")
    assert str(caught.value).startswith(f"cannot reach {plain_url}: ")
    assert "use an https:// URL" in str(caught.value)


def test_https_to_a_plain_http_server_fails_cleanly(tls_cluster: MiniCluster) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        with DFSClient(url, ca_file=tls_cluster.ca_file) as fs, pytest.raises(UnavailableError) as caught:
            fs.status("/")
        assert "TLS handshake failed" in str(caught.value) and "serving https?" in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()


def test_a_datanode_that_does_not_trust_the_namenode_never_registers(tls_cluster: MiniCluster, tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other")
    node = tls_cluster.add_datanode(wait=False, extra_args=["--tls-ca", str(other.ca_file)])
    try:
        node.wait_ready()  # it serves; it just cannot talk to the NameNode
        wait_until(lambda: "not trusted" in node.log_path.read_text(errors="replace"), 30, "the refusal in its log")
        assert len(tls_cluster.report().datanodes) == 4
    finally:
        node.kill()
        tls_cluster.datanodes.remove(node)


def test_cluster_up_with_tls_prints_what_to_trust(tmp_path: Path) -> None:
    port, base = free_port(), tmp_path / "dfs"
    command = [sys.executable, "-m", "client.cli", "cluster", "up", "--tls", "-n", "1", "--base-dir", str(base)]
    process = subprocess.Popen(
        [*command, "--namenode-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        output = ""
        for line in process.stdout:
            output += line
            if line.startswith("Press Ctrl-C"):
                break
        ca_file = base / "tls" / "ca.pem"
        assert f"NameNode    https://127.0.0.1:{port}" in output, output
        assert f"TLS CA      {ca_file}" in output
        assert f"export DFS_NAMENODE=https://127.0.0.1:{port}\n" in output
        assert f"export DFS_CA_FILE={ca_file}\n" in output
        with DFSClient(f"https://127.0.0.1:{port}", ca_file=ca_file) as fs:
            fs.write_bytes("/up.txt", b"up over tls", replication=1)
            assert fs.read_bytes("/up.txt") == b"up over tls"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_server(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Start a server that should refuse to (a DataNode with a secret, so TLS is what it trips on)."""
    env = {**os.environ, "DFS_DATANODE_CLUSTER_SECRET": "s" * 64}
    command = [sys.executable, "-m", module, "--port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("module", ["namenode", "datanode"])
def test_servers_refuse_to_start_with_unusable_tls_files(module: str, tmp_path: Path) -> None:
    files = make_certs(tmp_path / "tls")
    missing = start_server(module, "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(files.key_file))
    assert missing.returncode == 1
    assert missing.stderr == f"dfs {module}: TLS certificate file {tmp_path / 'nope.pem'} does not exist\n"

    directory = start_server(module, "--tls-cert", str(files.cert_file), "--tls-key", str(tmp_path))
    assert (directory.returncode, directory.stderr) == (1, f"dfs {module}: TLS key file {tmp_path} is not a file\n")

    mismatched = start_server(module, "--tls-cert", str(files.ca_file), "--tls-key", str(files.key_file))
    assert mismatched.returncode == 1 and mismatched.stderr.count("\n") == 1
    assert mismatched.stderr.startswith(f"dfs {module}: cannot use TLS certificate {files.ca_file} with key")

    no_ca = start_server(module, "--tls-ca", str(tmp_path / "ca-nope.pem"))
    assert (no_ca.returncode, no_ca.stderr) == (1, f"dfs {module}: CA file {tmp_path / 'ca-nope.pem'} does not exist\n")

    half = start_server(module, "--tls-cert", str(files.cert_file))
    assert half.returncode == 2  # a usage error, in the parser's box like every other bad setting
    assert "give both or neither" in " ".join(half.stderr.replace("│", " ").split())
