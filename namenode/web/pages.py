"""Routes of the operator pages: HTML at `/`, `/datanodes`, `/health`, `/browse/...`, `/events`,
and each page's JSON twin under `/api/...` (client.protocol.status). Thin: views.py builds the data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from client.protocol import paths
from client.protocol.errors import DfsError
from client.protocol.status import (
    BlockHealthReport,
    BrowseDirectory,
    BrowseFile,
    ClusterOverview,
    DatanodeList,
    StatusRoutes,
    ThroughputHistory,
)
from namenode.api.deps import NameNodeDep
from namenode.web import views
from server_common.openapi import error_responses
from server_common.web import charts, make_templates

router = APIRouter(tags=["status pages"])
templates = make_templates(Path(__file__).parent / "templates", "NameNode")

#: Pages that watch changing state reload themselves; the file browser does not.
REFRESH_S = 5
HEALTH_REFRESH_S = 30  # fsck walks the namespace: not every few seconds
SortQuery = Annotated[views.SortKey, Query(description="column to sort by")]


def page(request: Request, template: str, json_url: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("refresh_s", REFRESH_S)
    return templates.TemplateResponse(request, template, {"json_url": json_url, **context}, status_code=status_code)


def error_page(request: Request, error: DfsError, json_url: str) -> HTMLResponse:
    """A failed page says what failed, with the protocol's error code, not a JSON body or a traceback."""
    return page(
        request, "error.html", json_url, status_code=error.http_status, title="Error", error=error, refresh_s=None
    )


@router.get(StatusRoutes.OVERVIEW)
async def overview_json(namenode: NameNodeDep) -> ClusterOverview:
    return await views.overview(namenode)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def overview_page(request: Request, namenode: NameNodeDep) -> HTMLResponse:
    data = await views.overview(namenode)
    history = views.throughput(namenode)
    capacity = charts.capacity_bars(
        [charts.CapacityBar(row.node.id, row.node.used, row.node.capacity) for row in data.datanodes]
    )
    rates = charts.throughput_lines([(s.at, s.write_bytes_per_s, s.read_bytes_per_s) for s in history.samples])
    return page(
        request,
        "overview.html",
        StatusRoutes.OVERVIEW,
        title="Cluster overview",
        o=data,
        capacity_chart=capacity,
        throughput_chart=rates,
    )


@router.get(StatusRoutes.DATANODES)
async def datanodes_json(namenode: NameNodeDep, sort: SortQuery = "id", desc: bool = False) -> DatanodeList:
    return await views.datanodes(namenode, sort, desc)


@router.get("/datanodes", response_class=HTMLResponse, include_in_schema=False)
async def datanodes_page(
    request: Request, namenode: NameNodeDep, sort: SortQuery = "id", desc: bool = False
) -> HTMLResponse:
    data = await views.datanodes(namenode, sort, desc)
    json_url = f"{StatusRoutes.DATANODES}?sort={sort}&desc={str(desc).lower()}"
    return page(request, "datanodes.html", json_url, title="DataNodes", d=data)


@router.get(StatusRoutes.HEALTH)
async def health_json(namenode: NameNodeDep) -> BlockHealthReport:
    return await views.block_health(namenode)


@router.get("/health", response_class=HTMLResponse, include_in_schema=False)
async def health_page(request: Request, namenode: NameNodeDep) -> HTMLResponse:
    data = await views.block_health(namenode)
    return page(request, "health.html", StatusRoutes.HEALTH, title="Block health", h=data, refresh_s=HEALTH_REFRESH_S)


def _browse_path(raw: str) -> str:
    """`/browse/a/b` serves `/a/b`; the path obeys the namespace's rules (400 otherwise)."""
    return paths.validate_path("/" + raw.strip("/") if raw.strip("/") else "/")


AfterQuery = Annotated[str, Query(max_length=1024, description="list entries after this name")]


@router.get(StatusRoutes.BROWSE + "/{raw_path:path}", responses=error_responses(403, 404))
async def browse_json(raw_path: str, namenode: NameNodeDep, after: AfterQuery = "") -> BrowseDirectory | BrowseFile:
    return await views.browse(namenode, _browse_path(raw_path), after)


@router.get("/browse", include_in_schema=False)
async def browse_root() -> RedirectResponse:
    return RedirectResponse("/browse/", status_code=307)


@router.get("/browse/{raw_path:path}", response_class=HTMLResponse, include_in_schema=False)
async def browse_page(request: Request, raw_path: str, namenode: NameNodeDep, after: AfterQuery = "") -> Response:
    json_url = StatusRoutes.BROWSE + quote("/" + raw_path)
    try:
        path = _browse_path(raw_path)
        data = await views.browse(namenode, path, after)
    except DfsError as error:
        return error_page(request, error, json_url)
    crumbs = [("/", views.browse_link("/"))]
    for depth, name in enumerate(paths.split(path)):
        crumbs.append((name, views.browse_link("/" + "/".join(paths.split(path)[: depth + 1]))))
    template = "file.html" if isinstance(data, BrowseFile) else "directory.html"
    return page(request, template, json_url, title=path, b=data, crumbs=crumbs, refresh_s=None)


@router.get(StatusRoutes.THROUGHPUT)
async def throughput_json(namenode: NameNodeDep) -> ThroughputHistory:
    return views.throughput(namenode)


EVENTS_PAGE = 200


@router.get("/events", response_class=HTMLResponse, include_in_schema=False)
async def events_page(request: Request, namenode: NameNodeDep) -> HTMLResponse:
    events = await namenode.recent_events(EVENTS_PAGE)
    return page(request, "events.html", f"{StatusRoutes.EVENTS}?limit={EVENTS_PAGE}", title="Events", events=events)
