"""HTTP binding of the cluster event log: `GET /api/events?limit=&before=` (JSON, newest first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from client.protocol.client_namenode import MAX_EVENTS_LIMIT, ClusterEvents
from client.protocol.common import MAX_INT64
from client.protocol.status import StatusRoutes
from namenode.api.deps import NameNodeDep

router = APIRouter(tags=["status"])


@router.get(StatusRoutes.EVENTS)
async def recent_events(
    namenode: NameNodeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_LIMIT)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64, description="Only events older than this id.")] = None,
) -> ClusterEvents:
    """The newest `limit` events; page back with `before=<id of the last one>`."""
    return ClusterEvents(events=await namenode.recent_events(limit, before))
