"""Cluster events kept in SQL (`events`): what the operators' page and `GET /api/events` show.

An event describing a metadata change is recorded inside that change's transaction
(`record`), so it exists exactly when the change does; one describing in-memory state
(safe mode, the balancer) is its own small write through the group-committing writer
(`submit`). Recording never fails the operation it describes: it runs in its own
SAVEPOINT, and a failure is logged and dropped. The table keeps the newest `keep` events;
`prune_if_needed` (from the background loop) trims it by primary key.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import ClusterEvent, EventKind, EventSeverity
from namenode.db.database import Database
from namenode.db.models import Event

log = structlog.get_logger(__name__)

KEEP_EVENTS = 10_000
MAX_MESSAGE = 1024
MAX_PATH = 4096


class EventLog:
    """Records and reads cluster events; `db` is needed only by `submit` and the async helpers."""

    def __init__(
        self, db: Database | None = None, clock: Callable[[], float] = time.time, keep: int = KEEP_EVENTS
    ) -> None:
        self.db = db
        self.clock = clock
        self.keep = keep

    def record(
        self,
        session: Session,
        kind: EventKind,
        message: str,
        *,
        severity: EventSeverity = EventSeverity.INFO,
        datanode_id: str | None = None,
        path: str | None = None,
        block_id: int | None = None,
        at: float | None = None,
    ) -> None:
        """Add an event to the transaction of `session` (never raises)."""
        row = Event(
            at=self.clock() if at is None else at,
            kind=kind.value,
            severity=severity.value,
            message=message[:MAX_MESSAGE],
            datanode_id=datanode_id,
            path=path[:MAX_PATH] if path is not None else None,
            block_id=block_id,
        )
        # The operation's own pending changes are flushed first: their errors stay theirs.
        session.flush()
        try:
            with session.begin_nested():
                session.add(row)
        except Exception:
            log.exception("could not record a cluster event", kind=kind.value)

    def submit(
        self,
        kind: EventKind,
        message: str,
        *,
        severity: EventSeverity = EventSeverity.INFO,
        datanode_id: str | None = None,
        block_id: int | None = None,
    ) -> None:
        """Record an event in a write of its own, without waiting for it (never raises)."""
        if self.db is None:
            return
        at = self.clock()

        def write(session: Session) -> None:
            self.record(session, kind, message, severity=severity, datanode_id=datanode_id, block_id=block_id, at=at)

        try:
            future = self.db.submit_write(write)
        except Exception as exc:  # the store is shutting down
            log.warning("could not record a cluster event", kind=kind.value, error=str(exc))
            return
        future.add_done_callback(_log_failure)

    # --- reading and pruning ---------------------------------------------------------------

    def recent(self, session: Session, limit: int, before_id: int | None = None) -> list[ClusterEvent]:
        """The newest `limit` events (older than `before_id` if given), newest first."""
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(Event.id < before_id)
        return [
            ClusterEvent(
                id=row.id,
                at=row.at,
                kind=row.kind,
                severity=EventSeverity(row.severity),
                message=row.message,
                datanode_id=row.datanode_id,
                path=row.path,
                block_id=row.block_id,
            )
            for row in session.scalars(query)
        ]

    def needs_pruning(self, session: Session) -> bool:
        """Two primary-key lookups: could there be more than `keep` events?"""
        oldest, newest = session.execute(select(func.min(Event.id), func.max(Event.id))).one()
        return oldest is not None and newest - oldest >= self.keep

    def prune(self, session: Session) -> int:
        """Delete all but the newest `keep` events; returns how many went."""
        cutoff = session.scalar(select(Event.id).order_by(Event.id.desc()).offset(self.keep - 1).limit(1))
        if cutoff is None:
            return 0
        result = session.execute(delete(Event).where(Event.id < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def prune_if_needed(self) -> None:
        """Check on the reader pool, write only when there is something to delete."""
        assert self.db is not None
        if await self.db.read(self.needs_pruning):
            await self.db.write(self.prune)


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        log.warning("could not record a cluster event", error=str(error))
