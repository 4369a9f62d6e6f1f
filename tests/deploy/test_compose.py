"""The docker-compose deployment (docker-compose.yml, docs/deploy.md).

Docker itself is not needed: `docker-compose config` validates the file and resolves it, and the
command lines it gives the NameNodes and a DataNode are run here as the image would run them
(`dfs` + the service's command and environment), with container names, ports and paths swapped
for 127.0.0.1, ephemeral ports and a temporary directory, and SQLite (or the test PostgreSQL
server) in place of the postgres service.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in constraints.txt

from client.local_cluster import wait_until
from client.protocol.client_namenode import ClusterReport, DatanodeState, Routes
from tests.conftest import BACKENDS, backend_database
from tests.minicluster import free_port

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
#: What .env would hold; passed explicitly, so a developer's own .env never changes the result.
COMPOSE_ENV = {"DFS_CLUSTER_SECRET": "compose-test-secret-" + "s" * 32, "POSTGRES_PASSWORD": "compose-test-pw"}
NAMENODES = ("namenode1", "namenode2")
DATANODES = ("datanode1", "datanode2", "datanode3")
START_TIMEOUT_S = 30.0


def outside_settings() -> dict[str, str]:
    """This process's environment without pydfs or compose settings (a developer's own)."""
    return {key: value for key, value in os.environ.items() if key not in COMPOSE_ENV and not key.startswith("DFS_")}


def docker_compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on our file with exactly `env` for interpolation (an empty --env-file)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: scripts/setup-system installs it (Debian package docker-compose)")
    env_file = tmp_path / "empty.env"
    env_file.touch()
    return subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        env={**outside_settings(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as docker-compose resolves it (anchors merged, variables interpolated)."""
    result = docker_compose_config(tmp_path_factory.mktemp("compose"), COMPOSE_ENV)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def option(command: list[str], flag: str) -> str:
    """The value after `flag` in a command line (exactly once)."""
    assert command.count(flag) == 1, f"{flag} must appear once in {command}"
    return command[command.index(flag) + 1]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source (docker-compose 1 prints "source:target:mode", Compose 2 a mapping)."""
    pairs = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            pairs[volume["target"]] = volume["source"]
        else:
            source, target = volume.split(":")[:2]
            pairs[target] = source
    return pairs


def published_ports(service: dict[str, Any]) -> set[int]:
    """Container ports published on the host (as "address:host:container/tcp" or a mapping)."""
    ports = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(str(port).split("/")[0].rsplit(":", 1)[1]))
    return ports


def start_conditions(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as service -> condition (Compose 2 adds keys such as required: true)."""
    return {name: str(dependency["condition"]) for name, dependency in service["depends_on"].items()}


def own_url(service: dict[str, Any]) -> str:
    """The URL other containers reach a node at: its host name and the port it binds."""
    return f"http://{service['hostname']}:{option(service['command'], '--port')}"


# --- the compose file ----------------------------------------------------------------------


def test_services_and_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", *NAMENODES, *DATANODES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    named = set(compose["volumes"])
    data_dirs = {
        "postgres": "/var/lib/postgresql/data",
        **{name: option(services[name]["command"], "--data-dir") for name in (*NAMENODES, *DATANODES)},
    }
    sources = []
    for name, target in data_dirs.items():
        assert target in mounts(services[name]), f"{name} keeps {target} on no volume"
        sources.append(mounts(services[name])[target])
    assert set(sources) <= named, "every data directory is a named volume"
    assert len(set(sources)) == len(sources), "no two services share a data volume"


def test_healthchecks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in (*NAMENODES, *DATANODES):
        probe = " ".join(services[name]["healthcheck"]["test"])
        port = option(services[name]["command"], "--port")
        assert f"http://127.0.0.1:{port}/readyz" in probe, f"{name}'s health check probes {probe}"
    for name in NAMENODES:
        assert start_conditions(services[name]) == {"postgres": "service_healthy"}
        assert published_ports(services[name]) == {int(option(services[name]["command"], "--port"))}
    for name in DATANODES:
        # Never service_healthy: a restarted NameNode is not ready until DataNodes report (safe mode).
        assert start_conditions(services[name]) == dict.fromkeys(NAMENODES, "service_started")


def test_every_datanode_names_both_namenodes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    namenode_urls = {own_url(services[name]) for name in NAMENODES}
    assert len(namenode_urls) == len(NAMENODES)
    for name in NAMENODES:
        assert services[name]["environment"]["DFS_NAMENODE_ADVERTISE_URL"] == own_url(services[name])
    racks = set()
    for name in DATANODES:
        command = services[name]["command"]
        assert set(option(command, "--namenode").split(",")) == namenode_urls, f"{name}'s NameNodes"
        assert option(command, "--advertise-url") == own_url(services[name])
        assert option(command, "--host") == "0.0.0.0"
        racks.add(option(command, "--rack"))
    assert racks == {"/rack1", "/rack2"}


def test_one_secret_and_one_database(compose: dict[str, Any]) -> None:
    services = compose["services"]
    secret = COMPOSE_ENV["DFS_CLUSTER_SECRET"]
    for name in NAMENODES:
        assert services[name]["environment"]["DFS_NAMENODE_CLUSTER_SECRET"] == secret
        assert "--cluster-secret-file" not in services[name]["command"]
        db = urlsplit(option(services[name]["command"], "--db"))
        postgres = services["postgres"]["environment"]
        assert db.scheme == "postgresql+psycopg"
        assert (db.hostname, db.port, db.path) == ("postgres", 5432, "/" + postgres["POSTGRES_DB"])
        assert (db.username, db.password) == (postgres["POSTGRES_USER"], COMPOSE_ENV["POSTGRES_PASSWORD"])
    for name in DATANODES:
        assert services[name]["environment"]["DFS_DATANODE_CLUSTER_SECRET"] == secret


def test_secrets_have_no_default(tmp_path: Path) -> None:
    """Without .env the file refuses to resolve: a default secret would be everyone's secret."""
    for missing in COMPOSE_ENV:
        result = docker_compose_config(tmp_path, {k: v for k, v in COMPOSE_ENV.items() if k != missing})
        assert result.returncode != 0
        assert missing in result.stderr and "docs/deploy.md" in result.stderr


def test_dockerfile() -> None:
    """The image: the project's Python, pinned installs, an unprivileged user, `dfs` as entry point."""
    dockerfile = (REPO / "Dockerfile").read_text()
    python = re.search(r'^python_version = "(3\.\d+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert python is not None
    assert re.search(rf"^FROM python:{re.escape(python[1])}-slim\b", dockerfile, re.M)
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 9870 9864$", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["dfs"\]$', dockerfile, re.M)
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "dfs-data"} <= ignored, "no secrets or local state in the build context"


# --- the image's command lines, run outside Docker ------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


class Launcher:
    """Runs compose services' command lines as local processes: `dfs` is the image's entry point."""

    def __init__(self, compose: dict[str, Any], base: Path) -> None:
        self.services = compose["services"]
        self.base = base
        #: Where each container's endpoint is here: http://namenode1:9870 -> http://127.0.0.1:<port>.
        self.local_urls = {
            own_url(service): f"http://127.0.0.1:{free_port()}"
            for service in self.services.values()
            if "hostname" in service
        }
        self.servers: list[Server] = []

    def localize(self, name: str, db_url: str | None) -> tuple[list[str], dict[str, str]]:
        """The service's command and environment with every container address and path made local."""
        service = self.services[name]
        local = urlsplit(self.local_urls[own_url(service)])
        values = {"--host": "127.0.0.1", "--port": str(local.port), "--data-dir": str(self.base / name)}
        if db_url is not None:
            values["--db"] = db_url
        command = list(service["command"])
        for flag, value in values.items():
            command[command.index(flag) + 1] = value
        environment = dict(service.get("environment", {}))

        def swap(text: str) -> str:
            for container_url, local_url in self.local_urls.items():
                text = text.replace(container_url, local_url)
            return text

        command = [swap(arg) for arg in command]
        environment = {key: swap(value) for key, value in environment.items()}
        hosts = [str(service["hostname"]) for service in self.services.values() if "hostname" in service]
        for host in [*hosts, "postgres", "0.0.0.0"]:
            left = [arg for arg in [*command, *environment.values()] if f"//{host}:" in arg or f"@{host}:" in arg]
            assert not left, f"{name}: {host} is not reachable outside Docker: {left}"
        return command, environment

    def start(self, name: str, db_url: str | None = None) -> Server:
        command, environment = self.localize(name, db_url)
        entry_point = Path(sys.executable).with_name("dfs")
        log = self.base / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(entry_point), *command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Only the service's settings: none of ours (DFS_NAMENODE_*, ...) may leak in.
                env={**outside_settings(), **environment, "DFS_EXIT_WITH_PARENT": "1"},
                start_new_session=True,
            )
        server = Server(name, process, log)
        self.servers.append(server)
        return server

    def wait_ready(self, server: Server) -> None:
        """Until the server's /readyz answers 200 (what the compose health checks probe)."""
        ready = self.url(server.name) + "/readyz"
        wait_until(lambda: self.answers(server, ready), START_TIMEOUT_S, f"{server.name} to be ready")

    def url(self, name: str) -> str:
        return self.local_urls[own_url(self.services[name])]

    def answers(self, server: Server, url: str) -> bool:
        if server.process.poll() is not None:
            raise AssertionError(f"{server.name} exited with {server.process.returncode}:\n{server.tail()}")
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        for server in reversed(self.servers):
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in self.servers:
            try:
                server.process.wait(10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@pytest.fixture()
def launcher(compose: dict[str, Any], tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(compose, tmp_path)
    try:
        yield started
    finally:
        started.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


def live_datanodes(namenode_url: str) -> set[tuple[str, str]]:
    """(advertised URL, rack) of every live DataNode, as this NameNode reports them."""
    response = httpx.get(namenode_url + Routes.CLUSTER_REPORT, timeout=5.0)
    response.raise_for_status()
    report = ClusterReport.model_validate_json(response.content)
    return {(node.url, node.rack) for node in report.datanodes if node.state is DatanodeState.LIVE}


@pytest.mark.parametrize("backend", BACKENDS)
def test_compose_command_lines_start_a_cluster(launcher: Launcher, tmp_path: Path, backend: str) -> None:
    """Both NameNodes on one database and a DataNode naming both: it registers, all are ready."""
    sqlite_url = f"sqlite:///{(tmp_path / 'metadata.db').resolve()}"
    with backend_database(backend, sqlite_url) as db_url:
        namenodes = [launcher.start(name, db_url) for name in NAMENODES]
        datanode = launcher.start("datanode1")
        for server in [*namenodes, datanode]:
            launcher.wait_ready(server)
        for server in namenodes:
            assert live_datanodes(launcher.url(server.name)) == {(launcher.url("datanode1"), "/rack1")}, server.tail()
        launcher.stop()  # before the PostgreSQL database is dropped
