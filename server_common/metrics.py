"""Prometheus metrics both servers share: per-operation request metrics, `/metrics`, one registry per app.

Requests are labelled by the matched *route template* (`/v1/blocks/{block_id}`), never
the raw path, so label cardinality stays bounded whatever clients send. Each app owns
its own `CollectorRegistry` (no global default registry), so several apps in one test
process do not collide. Live values (heartbeat ages, queues) come from collectors that
read the state at scrape time; `refresh` lets a server update an async snapshot first.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "METRICS_ROUTE",
    "UNMATCHED_ROUTE",
    "RequestMetrics",
    "RequestMetricsMiddleware",
    "install_metrics",
    "metrics_response",
    "route_template",
]

METRICS_ROUTE = "/metrics"
#: The route label of requests no route matched (unknown paths: one series, not one per path).
UNMATCHED_ROUTE = "<unmatched>"
#: Request latency buckets, seconds: from quick metadata calls up to long block transfers.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RequestMetrics:
    """The request counter and latency histogram of one app, in that app's registry."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.requests = Counter(
            f"{prefix}_requests",
            "HTTP requests handled, by route template, method and status class",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{prefix}_request_duration_seconds",
            "Time from request start to the last byte of the response, by route template and method",
            ["route", "method"],
            registry=registry,
            buckets=REQUEST_BUCKETS,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, f"{status // 100}xx").inc()
        self.latency.labels(route, method).observe(seconds)


def route_template(scope: Scope, entry_root_path: str) -> str:
    """The template of the route that handled `scope` (with any mount prefix), or UNMATCHED_ROUTE."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    root_path = str(scope.get("root_path", ""))
    mount = root_path[len(entry_root_path) :] if root_path.startswith(entry_root_path) else ""
    if isinstance(route, Mount) and mount.endswith(path):
        mount = mount[: -len(path)]  # a mounted app (static files): root_path already ends with its path
    return mount + path


class RequestMetricsMiddleware:
    """Pure ASGI middleware (streams pass through untouched): count and time every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        entry_root_path = str(scope.get("root_path", ""))
        status = 500  # an exception before the response starts is answered 500 further out

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            route = route_template(scope, entry_root_path)
            self.metrics.observe(route, str(scope["method"]), status, time.perf_counter() - started)


def metrics_response(registry: CollectorRegistry) -> Response:
    """The registry in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(
    app: FastAPI, prefix: str, refresh: Callable[[], Awaitable[None]] | None = None
) -> CollectorRegistry:
    """Give `app` its own registry, request metrics and a `GET /metrics` route; returns the registry.

    `refresh` is awaited before each scrape: collectors are synchronous and run on the event
    loop, so anything that needs I/O (a database count) is fetched here, not in `collect()`.
    """
    registry = CollectorRegistry()
    app.add_middleware(RequestMetricsMiddleware, metrics=RequestMetrics(registry, prefix))
    app.state.metrics_registry = registry

    @app.get(METRICS_ROUTE, tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        if refresh is not None:
            await refresh()
        return metrics_response(registry)

    return registry
