"""Routes of the DataNode status page; the data is `datanode.status.describe`, as `/v1/info`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from datanode.status import describe
from server_common.web import make_templates
from server_common.web.formatting import percent

router = APIRouter(tags=["status pages"])
templates = make_templates(Path(__file__).parent / "templates", "DataNode")

STATUS_JSON = "/api/status"
REFRESH_S = 5


def _status(request: Request) -> dict[str, Any]:
    return describe(request.app.state.datanode, request.app.state.settings)


@router.get(STATUS_JSON)
async def status_json(request: Request) -> dict[str, Any]:
    return _status(request)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> HTMLResponse:
    status = _status(request)
    scanner = status["scanner"]
    context = {
        "json_url": STATUS_JSON,
        "refresh_s": REFRESH_S,
        "title": f"DataNode {status['id']}",
        "s": status,
        "used_pct": percent(status["used"], status["capacity"]),
        "scan_pct": percent(scanner["pass_blocks_done"], scanner["pass_blocks_total"]),
    }
    return templates.TemplateResponse(request, "status.html", context)
