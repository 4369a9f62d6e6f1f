"""The DataNode's control loop against a scripted NameNode (httpx MockTransport): it must never die."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx

from client.protocol.client_namenode import Routes
from client.protocol.common import DatanodeRef
from client.protocol.datanode_namenode import HeartbeatRequest, ReplicaState
from datanode.namenode_link import NameNodeLink
from datanode.storage.block_store import BlockStore, ReplicaInfo


def test_control_loop_survives_a_failed_block_report(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    heartbeats = asyncio.Event()

    def namenode(request: httpx.Request) -> httpx.Response:
        route = request.url.path
        calls[route] += 1
        if route == Routes.REGISTER:
            return httpx.Response(
                200, json={"cluster_id": "CID-x", "heartbeat_interval_s": 0.05, "block_report_interval_s": 3600}
            )
        if route == Routes.BLOCK_REPORT and calls[route] == 1:
            return httpx.Response(503, json={"code": "UNAVAILABLE", "errno": 111, "message": "busy", "path": None})
        if route == Routes.HEARTBEAT:
            if calls[route] >= 3:
                heartbeats.set()
            return httpx.Response(200, json={"commands": []})
        return httpx.Response(200, json={"ok": True})

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(namenode)) as http:
            link = _link(tmp_path, http, heartbeat_interval_s=0.05)
            task = asyncio.create_task(link.run())
            await asyncio.wait_for(link.registered.wait(), timeout=20)
            await asyncio.wait_for(heartbeats.wait(), timeout=20)
            assert not task.done()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert calls[Routes.REGISTER] == 2  # registered again after the refused report
    assert calls[Routes.BLOCK_REPORT] == 2
    assert json.loads((tmp_path / "VERSION").read_text())["cluster_id"] == "CID-x"


def _link(data_dir: Path, http: httpx.AsyncClient, heartbeat_interval_s: float) -> NameNodeLink:
    """A DataNode's control loop on a fresh store, talking to the scripted NameNode behind `http`."""
    store = BlockStore(data_dir)
    store.open()
    me = DatanodeRef(id=store.identity.datanode_id, url="http://127.0.0.1:1")
    return NameNodeLink(
        store,
        http,
        "http://namenode",
        me=lambda: me,
        stats=lambda: HeartbeatRequest(datanode_id=me.id, capacity=1, used=0, remaining=1),
        replicate=_never,
        heartbeat_interval_s=heartbeat_interval_s,
        block_report_interval_s=None,
    )


async def _never(command: object) -> bool:
    raise AssertionError("no replication expected")


def test_finalised_replicas_are_reported_together_and_a_copy_brings_the_report_forward(tmp_path: Path) -> None:
    """Vouched replicas (their receipts went to the writer) wait up to a second, gathering others;
    a replica only the report announces (a copy) makes the whole queue go out at once."""
    reports: list[list[int]] = []
    arrived = asyncio.Event()

    def namenode(request: httpx.Request) -> httpx.Response:
        route = request.url.path
        if route == Routes.REGISTER:
            return httpx.Response(
                200, json={"cluster_id": "CID-x", "heartbeat_interval_s": 3600, "block_report_interval_s": 3600}
            )
        if route == Routes.INCREMENTAL_REPORT:
            reports.append([entry["block_id"] for entry in json.loads(request.content)["received"]])
            arrived.set()
        return httpx.Response(200, json={"ok": True})

    def replica(block_id: int) -> ReplicaInfo:
        return ReplicaInfo(block_id, 1, 10, ReplicaState.FINALIZED, tmp_path)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(namenode)) as http:
            link = _link(tmp_path, http, heartbeat_interval_s=3600)
            task = asyncio.create_task(link.run())
            await asyncio.wait_for(link.registered.wait(), timeout=20)
            for block_id in (1, 2, 3):
                await link.replica_finalized(replica(block_id), vouched=True)
            await link.replica_finalized(replica(4))
            await asyncio.wait_for(arrived.wait(), timeout=20)
            arrived.clear()
            await link.replica_finalized(replica(5), vouched=True)  # alone: still sent, within its delay
            await asyncio.wait_for(arrived.wait(), timeout=20)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await link.close()

    asyncio.run(scenario())
    assert reports == [[1, 2, 3, 4], [5]]
