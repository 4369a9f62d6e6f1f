"""DataNode app factory: `create_app(settings, advertise_url)` with a lifespan owning storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from client.protocol import SOFTWARE_VERSION
from client.protocol.common import HEADER_WRITE
from client.protocol.data_transfer import WriteBlockHeader
from client.protocol.status import NOT_READY_RESPONSE, Readiness
from datanode.api import blocks, webhdfs
from datanode.config import DataNodeSettings
from datanode.metrics import DataNodeCollector
from datanode.service import DataNode
from datanode.status import describe
from datanode.web import pages
from server_common.errors import install_error_handlers
from server_common.metrics import install_metrics
from server_common.openapi import install_openapi
from server_common.request_id import install_request_ids

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
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app, json_headers={HEADER_WRITE: WriteBlockHeader})
    install_request_ids(app)
    install_metrics(app, "dfs_datanode").register(DataNodeCollector(datanode))
    app.include_router(blocks.router)
    app.include_router(webhdfs.router)
    app.include_router(pages.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=Readiness, responses=NOT_READY_RESPONSE)
    async def readyz() -> JSONResponse:
        """Ready once registered with the NameNode (and its full block report sent)."""
        if datanode.link.registered.is_set():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reasons": ["not registered with the NameNode"]}, 503)

    @app.get("/v1/info", tags=["health"])
    async def info() -> dict[str, Any]:
        return describe(datanode, settings)

    return app
