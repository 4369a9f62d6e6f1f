"""NameNode app factory: `create_app(settings)` with a lifespan that owns the metadata store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from client.protocol import SOFTWARE_VERSION
from client.protocol.status import NOT_READY_RESPONSE, Readiness
from namenode.api import admin, client_protocol, datanode_protocol, events, tokens, webhdfs
from namenode.config import NameNodeSettings
from namenode.db import schema
from namenode.db.database import Database
from namenode.limits import UNLIMITED_ROUTES, install_limits
from namenode.metrics import NameNodeMetrics
from namenode.service import NameNode
from namenode.web import pages
from server_common.errors import install_error_handlers
from server_common.metrics import install_metrics
from server_common.openapi import install_openapi
from server_common.rate_limit import RateLimitCollector
from server_common.request_id import install_request_ids

log = structlog.get_logger(__name__)


def prepare_database(db: Database, settings: NameNodeSettings) -> str:
    """Upgrade the schema to head and format an empty namespace; returns the cluster id.

    Safe when several NameNodes start at once on one database: both steps run in one transaction
    under the schema lock (namenode.db.schema), so the others wait, then find the namespace."""
    prepared = schema.prepare(db.engine, owner=settings.superuser or None, group=settings.supergroup)
    if prepared.from_revision != prepared.to_revision:
        log.info("upgraded metadata schema", from_revision=prepared.from_revision, to_revision=prepared.to_revision)
    if prepared.formatted:
        log.info("formatted new namespace", cluster_id=prepared.cluster_id)
    return prepared.cluster_id


def create_app(settings: NameNodeSettings, clock: Callable[[], float] = time.time) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.db_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url())
        try:
            cluster_id = await anyio.to_thread.run_sync(prepare_database, db, settings)
            db.start()
            namenode = NameNode(settings, db, cluster_id, clock)
            await namenode.start()
            app.state.namenode = namenode
            app.state.namenode_metrics = NameNodeMetrics(namenode, registry)
            log.info("namenode started", cluster_id=cluster_id, db=db.url.render_as_string(hide_password=True))
            yield
            app.state.namenode_metrics.close()
            await namenode.stop()
        finally:
            db.close()

    app = FastAPI(title="pydfs NameNode", version=SOFTWARE_VERSION, lifespan=lifespan)
    install_error_handlers(app)
    # The limits' middlewares answer 429 and 413 before any route: the schema says so.
    install_openapi(app, every_operation=[429], with_body=[413], exempt_prefixes=UNLIMITED_ROUTES)
    limiter = install_limits(app, settings)
    registry = install_metrics(app, "dfs_namenode", refresh=lambda: app.state.namenode_metrics.refresh())
    if limiter is not None:
        registry.register(RateLimitCollector(limiter, "dfs_namenode"))
    install_request_ids(app)
    app.include_router(client_protocol.router)
    app.include_router(datanode_protocol.router)
    app.include_router(admin.router)
    app.include_router(tokens.router)
    app.include_router(webhdfs.router)
    app.include_router(events.router)
    app.include_router(pages.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=Readiness, responses=NOT_READY_RESPONSE)
    async def readyz() -> JSONResponse:
        """Ready: out of safe mode and the metadata database answers."""
        reasons = await app.state.namenode.readiness()
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app
