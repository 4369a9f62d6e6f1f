"""Starting a whole cluster on this machine as child processes (`dfs cluster up`, the test MiniCluster).

Servers are started as ``python -m namenode`` / ``python -m datanode`` (this package never
imports server code). Each writes its base URL to a port file once it is ready, which
is how we learn ports picked by the kernel (port 0) without races. A node restarted
after a kill comes back on the same port, as a real restarted daemon would.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from client.protocol.client_namenode import ClusterReport, DatanodeState, Routes, SafeModeState
from client.tls import TlsFiles, client_ssl_context

START_TIMEOUT_S = 60.0


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until true; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class NodeProcess:
    """One server process: how to start it, where it logs, where it says it is ready."""

    name: str
    module: str
    args: list[str]
    port_file: Path
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: Run the server through this, e.g. ``["ip", "netns", "exec", NAME]`` to start it in a network
    #: namespace (tests/cluster/test_partition.py); the wrapper must exec the server, keeping its pid.
    command_prefix: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def spawn(self) -> None:
        """Start the process (returns at once; `wait_ready` waits for it to listen)."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self.port_file.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            *self.command_prefix,
            sys.executable,
            "-m",
            self.module,
            "--port",
            str(self.port),
            "--port-file",
            str(self.port_file),
            *self.args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Servers shut down if this supervisor dies, even by kill -9 (server_common.serve).
                env={**os.environ, "DFS_EXIT_WITH_PARENT": "1", **self.env},
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> str:
        """Block until the port file appears; RuntimeError with the log's tail if the process died."""
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if not self.alive:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.02)
        self.url = self.port_file.read_text().strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        self.spawn()
        return self.wait_ready(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.wait()
        self.port_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind, as in a crash."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait()
        self.port_file.unlink(missing_ok=True)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class LocalCluster:
    """A NameNode and DataNodes as child processes under one base directory."""

    def __init__(
        self,
        base_dir: Path,
        *,
        datanodes: int = 3,
        namenode_port: int = 0,
        host: str = "127.0.0.1",
        db_url: str | None = None,
        namenode_args: Sequence[str] = (),
        datanode_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        racks: int = 1,
        tls: bool | TlsFiles = False,
        namenodes: int = 1,
    ) -> None:
        """`tls=True` makes a CA and a certificate for this host under BASE_DIR/tls on `start()`;
        `tls=TlsFiles(...)` uses existing ones (e.g. one CA for many clusters). Every node then
        serves https and verifies the others against the CA (`ca_file`).

        `namenodes=N` starts N NameNodes on one metadata database (`db_url`, or the first
        NameNode's SQLite file) with one cluster secret; DataNodes are given every one of them."""
        self.base_dir = base_dir
        self.host = host
        self.tls_files = TlsFiles(base_dir / "tls") if tls is True else (tls or None)
        self._make_certs = tls is True
        #: What httpx should check https answers against (this cluster's CA once started with TLS).
        self.verify: ssl.SSLContext | bool = True
        self.datanode_args = list(datanode_args)
        self.racks = max(1, racks)
        self.env = dict(env or {})
        args = ["--host", host, "--data-dir", str(base_dir / "namenode"), *self._tls_args(), *namenode_args]
        if db_url:
            args += ["--db", db_url]
        self.namenode = NodeProcess(
            "namenode",
            "namenode",
            args,
            base_dir / "run" / "namenode.url",
            base_dir / "logs" / "namenode.log",
            port=namenode_port,
            env=self.env,
        )
        shared_db = db_url or f"sqlite:///{(base_dir / 'namenode' / 'metadata.db').resolve()}"
        #: Every NameNode, the first (which formats the database and makes the secret) first.
        self.namenodes = [self.namenode] + [
            NodeProcess(
                f"namenode{number}",
                "namenode",
                [
                    "--host",
                    host,
                    "--data-dir",
                    str(base_dir / f"namenode{number}"),
                    *self._tls_args(),
                    *namenode_args,
                    "--db",
                    shared_db,
                    "--cluster-secret-file",
                    str(self.secret_file),
                ],
                base_dir / "run" / f"namenode{number}.url",
                base_dir / "logs" / f"namenode{number}.log",
                env=self.env,
            )
            for number in range(2, namenodes + 1)
        ]
        self.datanodes: list[NodeProcess] = []
        self._initial_datanodes = datanodes

    @property
    def secret_file(self) -> Path:
        """The cluster secret, which the NameNode makes in its data directory on first start."""
        return self.base_dir / "namenode" / "cluster.secret"

    @property
    def url(self) -> str:
        """The first NameNode's URL."""
        assert self.namenode.url is not None, "cluster not started"
        return self.namenode.url

    @property
    def urls(self) -> str:
        """Every NameNode's URL, comma-separated, as clients and DataNodes take them."""
        assert all(node.url is not None for node in self.namenodes), "cluster not started"
        return ",".join(str(node.url) for node in self.namenodes)

    def answering_namenode(self) -> NodeProcess:
        """A running NameNode (the first one that is), for probes that must outlive a killed one."""
        for node in self.namenodes:
            if node.alive and node.url is not None:
                return node
        raise RuntimeError("no NameNode is running")

    @property
    def ca_file(self) -> Path | None:
        """The CA bundle clients of a TLS cluster must trust (None without TLS)."""
        return self.tls_files.ca_file if self.tls_files else None

    def _tls_args(self) -> list[str]:
        if self.tls_files is None:
            return []
        files = self.tls_files
        return ["--tls-cert", str(files.cert_file), "--tls-key", str(files.key_file), "--tls-ca", str(files.ca_file)]

    def _prepare_tls(self) -> None:
        """Make the certificates (once, before any node starts) and trust them in our own probes."""
        if self.tls_files is None:
            return
        if self._make_certs:
            from client.tls_certs import make_certs  # loads cryptography: only when needed

            make_certs(self.tls_files.directory, hosts=_dns_names(self.host), ips=_ip_addresses(self.host))
            self._make_certs = False
        self.verify = client_ssl_context(self.tls_files.ca_file)

    def start(self, timeout: float = START_TIMEOUT_S, *, wait_for_safemode: bool = True) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_tls()
        for namenode in self.namenodes:
            namenode.start(timeout)
        for _ in range(self._initial_datanodes):
            self.add_datanode(wait=False)
        for node in self.datanodes:
            node.wait_ready(timeout)
        self.wait_for_live_datanodes(len(self.datanodes), timeout)
        if wait_for_safemode:
            wait_until(lambda: self.report().safe_mode is SafeModeState.OFF, timeout, "the NameNode to leave safe mode")

    def rack_of(self, number: int) -> str:
        """DataNodes are dealt over the racks in turn: /rack1, /rack2, ..., /rack1, ..."""
        return "/default-rack" if self.racks == 1 else f"/rack{(number - 1) % self.racks + 1}"

    def add_datanode(
        self,
        *,
        wait: bool = True,
        extra_args: Sequence[str] = (),
        rack: str | None = None,
        host: str | None = None,
        command_prefix: Sequence[str] = (),
    ) -> NodeProcess:
        """Start one more DataNode; `host` binds it elsewhere than the cluster's host, and
        `command_prefix` wraps its command (see `NodeProcess.command_prefix`)."""
        number = len(self.datanodes) + 1
        args = [
            "--host",
            host or self.host,
            "--data-dir",
            str(self.base_dir / f"datanode{number}"),
            "--namenode",
            self.urls,
            "--rack",
            rack or self.rack_of(number),
            *self._tls_args(),
            "--cluster-secret-file",
            str(self.secret_file),
            *self.datanode_args,
            *extra_args,
        ]
        node = NodeProcess(
            f"datanode{number}",
            "datanode",
            args,
            self.base_dir / "run" / f"datanode{number}.url",
            self.base_dir / "logs" / f"datanode{number}.log",
            env=self.env,
            command_prefix=list(command_prefix),
        )
        self.datanodes.append(node)
        node.spawn()
        if wait:
            node.wait_ready()
            self.wait_for_live_datanodes(sum(1 for n in self.datanodes if n.alive))
        return node

    def stop(self) -> None:
        for node in [*self.datanodes, *reversed(self.namenodes)]:
            with contextlib.suppress(Exception):
                node.stop()

    def report(self) -> ClusterReport:
        url = self.answering_namenode().url if len(self.namenodes) > 1 else self.url
        response = httpx.get(f"{url}{Routes.CLUSTER_REPORT}", timeout=10.0, verify=self.verify)
        response.raise_for_status()
        return ClusterReport.model_validate_json(response.content)

    def live_datanode_ids(self) -> set[str]:
        return {n.id for n in self.report().datanodes if n.state is DatanodeState.LIVE}

    def wait_for_live_datanodes(self, count: int, timeout: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: len(self.live_datanode_ids()) >= count, timeout, f"{count} live DataNodes")

    def datanode_info(self, node: NodeProcess) -> dict[str, Any]:
        assert node.url is not None
        response = httpx.get(node.url + "/v1/info", timeout=10.0, verify=self.verify)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def _ip_addresses(host: str) -> list[str]:
    """The IPs a local cluster's certificate names: loopback, and the bind address if it is one."""
    addresses = ["127.0.0.1"]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return addresses
    if address.is_unspecified:  # a wildcard bind is reached on loopback (server_common.serve.base_url)
        return addresses + (["::1"] if address.version == 6 else [])
    return list(dict.fromkeys([*addresses, str(address)]))


def _dns_names(host: str) -> list[str]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return list(dict.fromkeys(["localhost", host])) if host else ["localhost"]
    return ["localhost"]
