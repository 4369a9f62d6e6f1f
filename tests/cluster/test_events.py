"""Cluster events in SQL, with real processes: membership, death and repair, corruption, restarts."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from client.protocol.client_namenode import ClusterEvent, ClusterEvents, EventKind
from client.protocol.status import StatusRoutes
from tests.conftest import BACKENDS
from tests.faults import flip_byte, read_with_replica_first
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 1024 * 1024


def events(cluster: MiniCluster, **params: Any) -> list[ClusterEvent]:
    response = httpx.get(cluster.url + StatusRoutes.EVENTS, params={"limit": 1000, **params}, timeout=10)
    response.raise_for_status()
    return ClusterEvents.model_validate_json(response.content).events


def wait_for_event(
    cluster: MiniCluster, kind: EventKind, match: Callable[[ClusterEvent], bool] = lambda _: True, timeout: float = 60
) -> ClusterEvent:
    found: list[ClusterEvent] = []

    def seen() -> bool:
        found[:] = [e for e in events(cluster) if e.kind == kind and match(e)]
        return bool(found)

    wait_until(seen, timeout, f"a {kind.value} event")
    return found[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_records_registrations_and_safe_mode_and_survives_a_restart(
    make_cluster: Callable[..., MiniCluster], backend: str
) -> None:
    cluster = make_cluster(backend, datanodes=3)
    node_ids = {info.id for info in cluster.report().datanodes}
    wait_until(
        lambda: {e.datanode_id for e in events(cluster) if e.kind == EventKind.DATANODE_REGISTERED} == node_ids,
        60,
        "a datanode_registered event per DataNode",
    )
    left = wait_for_event(cluster, EventKind.SAFE_MODE_LEFT)
    assert left.severity == "info" and left.message

    newest_first = events(cluster)
    assert [e.id for e in newest_first] == sorted((e.id for e in newest_first), reverse=True)
    page = events(cluster, limit=2)
    older = events(cluster, limit=2, before=page[-1].id)
    assert len(page) == 2 and older and all(e.id < page[-1].id for e in older)

    cluster.restart_namenode(kill=True)  # kill -9: only what was committed survives
    cluster.wait_for_live_datanodes(3)
    wait_until(
        lambda: sum(e.kind == EventKind.SAFE_MODE_ENTERED for e in events(cluster)) == 2,
        60,
        "the restarted NameNode's safe_mode_entered event",
    )
    after = {e.id: e for e in events(cluster)}
    assert all(after.get(e.id) == e for e in newest_first)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"limit": "many"}, {"before": 0}, {"before": "x"}], ids=str
)
def test_bad_paging_parameters_are_refused_with_a_json_error(cluster: MiniCluster, params: dict[str, Any]) -> None:
    response = httpx.get(cluster.url + StatusRoutes.EVENTS, params=params, timeout=10)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_ARGUMENT" and body["errno"] == 22 and "query." in body["message"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dead_node_and_its_repair_are_recorded(make_cluster: Callable[..., MiniCluster], backend: str) -> None:
    cluster = make_cluster(backend, datanodes=4, namenode_args=["--stale-after", "2", "--dead-after", "4"])
    with cluster.client() as fs:
        for n in range(2):
            fs.write_bytes(f"/ev/f{n}", os.urandom(2 * BLOCK + n), block_size=BLOCK, replication=3)
        victim_id = fs.block_locations("/ev/f0").blocks[0].locations[0].id
    victim = cluster.node_by_id(victim_id)
    cluster.kill_datanode(victim)

    dead = wait_for_event(cluster, EventKind.DATANODE_DEAD, lambda e: e.datanode_id == victim_id)
    assert dead.severity == "error"
    stale = wait_for_event(cluster, EventKind.DATANODE_STALE, lambda e: e.datanode_id == victim_id)
    assert stale.id < dead.id and stale.severity == "warning"
    finished = wait_for_event(cluster, EventKind.REPLICATION_FINISHED, lambda e: e.id > dead.id, timeout=90)
    assert "blocks were given new replicas" in finished.message
    # One event for the whole repair, not one per block.
    assert sum(e.kind == EventKind.REPLICATION_FINISHED for e in events(cluster)) == 1

    cluster.restart_datanode(victim)
    wait_for_event(cluster, EventKind.DATANODE_LIVE, lambda e: e.datanode_id == victim_id and e.id > dead.id)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_corrupt_replica_read_is_recorded_with_its_file(
    make_cluster: Callable[..., MiniCluster], backend: str
) -> None:
    cluster = make_cluster(backend, datanodes=3)
    path = "/ev/dir/victim"
    data = os.urandom(BLOCK + 5)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK, replication=3)
        block = fs.block_locations(path).blocks[0]
    bad_id = block.locations[0].id
    replica = cluster.replica_file(cluster.node_by_id(bad_id), block.block.block_id)
    assert replica is not None
    flip_byte(replica, 4321)

    assert read_with_replica_first(cluster, path, bad_id) == data
    event = wait_for_event(cluster, EventKind.CORRUPT_REPLICA)
    assert (event.path, event.datanode_id, event.block_id) == (path, bad_id, block.block.block_id)
    assert event.severity == "warning"
