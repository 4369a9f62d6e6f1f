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
from namenode.api import admin, client_protocol, datanode_protocol, events, webhdfs
from namenode.config import NameNodeSettings
from namenode.db import schema
from namenode.db.database import Database
from namenode.metrics import NameNodeMetrics
from namenode.service import NameNode
from namenode.web import pages
from server_common.errors import install_error_handlers
from server_common.metrics import install_metrics
from server_common.request_id import install_request_ids

log = structlog.get_logger(__name__)


def prepare_database(db: Database, settings: NameNodeSettings) -> str:
    """Upgrade the schema to head and format an empty namespace; returns the cluster id."""
    schema.upgrade(db.engine)
    with db.session() as session, session.begin():
        if not schema.is_formatted(session):
            cluster_id = schema.format_namespace(session, owner=settings.superuser or None, group=settings.supergroup)
            log.info("formatted new namespace", cluster_id=cluster_id)
            return cluster_id
        return schema.read_cluster_id(session)


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
    registry = install_metrics(app, "dfs_namenode", refresh=lambda: app.state.namenode_metrics.refresh())
    install_request_ids(app)
    app.include_router(client_protocol.router)
    app.include_router(datanode_protocol.router)
    app.include_router(admin.router)
    app.include_router(webhdfs.router)
    app.include_router(events.router)
    app.include_router(pages.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready: out of safe mode and the metadata database answers."""
        reasons = await app.state.namenode.readiness()
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app
