"""The NameNode's request limits: which routes have which body limit and which are rate limited.

The mechanisms are shared (server_common.rate_limit, server_common.body_limit); the policy is
here. DataNode-protocol routes are never rate limited (a refused heartbeat would make a busy
cluster look like a dying one) and take bodies up to a full block-report page; health checks
and /metrics are never limited; WebHDFS bodies are file data (proxy mode), streamed, not buffered.
"""

from __future__ import annotations

from fastapi import FastAPI

from client.protocol.client_namenode import Routes
from client.protocol.datanode_namenode import MAX_REPORT_BODY_BYTES
from client.protocol.webhdfs import PREFIX as WEBHDFS_PREFIX
from namenode.config import NameNodeSettings
from server_common.body_limit import BodyLimitMiddleware
from server_common.metrics import METRICS_ROUTE
from server_common.rate_limit import ClientRateLimiter, RateLimitMiddleware

DATANODE_PROTOCOL_ROUTES = (Routes.REGISTER, Routes.HEARTBEAT, Routes.BLOCK_REPORT, Routes.INCREMENTAL_REPORT)
#: Never rate limited.
UNLIMITED_ROUTES = (*DATANODE_PROTOCOL_ROUTES, "/healthz", "/readyz", METRICS_ROUTE)


def install_limits(app: FastAPI, settings: NameNodeSettings) -> ClientRateLimiter | None:
    """Add the body limit and (unless `client_rate_limit` is 0) the rate limit; returns the limiter.

    Call before install_metrics, so refused requests still show in the request metrics."""
    body_limits: list[tuple[str, int | None]] = [(route, MAX_REPORT_BODY_BYTES) for route in DATANODE_PROTOCOL_ROUTES]
    body_limits.append((WEBHDFS_PREFIX, None))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes, limits=body_limits)
    if settings.client_rate_limit <= 0:
        return None
    limiter = ClientRateLimiter(settings.client_rate_limit, settings.client_rate_burst)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt_prefixes=UNLIMITED_ROUTES)
    return limiter
