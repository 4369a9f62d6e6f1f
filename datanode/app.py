"""DataNode app factory: `create_app(settings, advertise_url)` with a lifespan owning storage."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI

from client.protocol import SOFTWARE_VERSION
from datanode.api import blocks, webhdfs
from datanode.config import DataNodeSettings
from datanode.service import DataNode
from server_common.errors import install_error_handlers

log = structlog.get_logger(__name__)


def create_app(settings: DataNodeSettings, advertise_url: str) -> FastAPI:
    datanode = DataNode(settings, advertise_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await datanode.start()
        log.info(
            "datanode started",
            id=datanode.ref().id,
            url=datanode.advertise_url,
            namenode=settings.namenode_url,
        )
        try:
            yield
        finally:
            await datanode.stop()

    app = FastAPI(title="pydfs DataNode", version=SOFTWARE_VERSION, lifespan=lifespan)
    app.state.datanode = datanode
    install_error_handlers(app)
    app.include_router(blocks.router)
    app.include_router(webhdfs.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/info", tags=["health"])
    async def info() -> dict[str, Any]:
        capacity, free = datanode.store.disk_usage()
        return {
            "id": datanode.store.identity.datanode_id,
            "cluster_id": datanode.store.identity.cluster_id,
            "url": datanode.advertise_url,
            "rack": settings.rack,
            "registered": datanode.link.registered.is_set(),
            "replicas": len(datanode.store.snapshot()),
            "used": datanode.store.used_bytes(),
            "capacity": capacity,
            "remaining": free,
            "active_transfers": datanode.active_transfers,
            "replication_bytes_sent": datanode.replicator.bytes_sent,
            "scanner": {
                "period_s": datanode.scanner.period_s,
                "rate_bytes_per_s": datanode.scanner.rate,
                **dataclasses.asdict(datanode.scanner.stats),
            },
        }

    return app
