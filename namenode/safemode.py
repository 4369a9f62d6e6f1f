"""Safe mode: a read-only namespace until enough of the block map has been confirmed by DataNodes.

The replica map survives restarts in SQL, but after a restart the NameNode cannot know
which of those replicas still exist until DataNodes report. So it starts in safe mode:
reads are served, changes are refused with SAFE_MODE, and nothing is re-replicated or
deleted (a missing report would otherwise look like lost replicas). Once the fraction of
complete blocks with at least `min_replication` replicas reported by DataNodes since the
start reaches `safemode_threshold`, and `safemode_extension_s` more seconds pass, safe
mode ends by itself. An operator may also enter and leave it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import EventKind, EventSeverity, SafeModeState, SafeModeStatus
from client.protocol.errors import SafeModeError
from namenode.config import NameNodeSettings
from namenode.db.models import Block, Replica
from namenode.events import EventLog
from namenode.states import BLOCK_COMPLETE, REPLICA_FINALIZED

log = structlog.get_logger(__name__)


class SafeMode:
    def __init__(self, settings: NameNodeSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.state = SafeModeState.STARTUP
        #: DataNodes that finished a full block report since this NameNode started.
        self.reported: set[str] = set()
        self._threshold_reached_at: float | None = None
        self._last = (0, 0)
        #: Safe mode is in-memory state (`update` may run in a read transaction): its events are
        #: writes of their own.
        self.events = EventLog(clock=clock)

    @property
    def on(self) -> bool:
        return self.state is not SafeModeState.OFF

    def check_writable(self, what: str = "the namespace") -> None:
        """Raise SAFE_MODE for any change while safe mode is on."""
        if self.on:
            raise SafeModeError(
                f"NameNode is in safe mode ({self.state.value}): {what} is read-only. {self._hint()}",
                # Start-up safe mode ends by itself: clients may wait. A manual one needs an operator.
                retry_after_s=1.0 if self.state is SafeModeState.STARTUP else None,
            )

    def _hint(self) -> str:
        if self.state is SafeModeState.MANUAL:
            return "An operator must run `dfs admin safemode leave`."
        total, safe = self._last
        return (
            f"{safe} of {total} blocks reported so far (threshold {self.settings.safemode_threshold:.3%}); "
            "it ends by itself once DataNodes report"
        )

    def datanode_reported(self, datanode_id: str) -> None:
        self.reported.add(datanode_id)

    def counts(self, session: Session) -> tuple[int, int]:
        """(complete blocks, complete blocks with enough replicas reported since start)."""
        total = session.scalar(select(func.count()).select_from(Block).where(Block.state == BLOCK_COMPLETE)) or 0
        if not self.reported or total == 0:
            return total, 0
        per_block = (
            select(Replica.block_id)
            .join(Block, Block.id == Replica.block_id)
            .where(
                Block.state == BLOCK_COMPLETE,
                Replica.state == REPLICA_FINALIZED,
                Replica.gen_stamp == Block.gen_stamp,
                Replica.length == Block.length,
                Replica.datanode_id.in_(sorted(self.reported)),
            )
            .group_by(Replica.block_id)
            .having(func.count() >= self.settings.min_replication)
            .subquery()
        )
        safe = session.scalar(select(func.count()).select_from(per_block)) or 0
        return total, safe

    def update(self, session: Session) -> None:
        """Leave start-up safe mode once the threshold has held for the extension period."""
        if self.state is not SafeModeState.STARTUP:
            return
        total, safe = self._last = self.counts(session)
        if total == 0:
            self.state = SafeModeState.OFF  # an empty namespace has nothing to wait for
            log.info("left safe mode: the namespace has no blocks")
            self.events.submit(EventKind.SAFE_MODE_LEFT, "left start-up safe mode: the namespace has no blocks")
            return
        if safe < total * self.settings.safemode_threshold:
            self._threshold_reached_at = None
            return
        now = self.clock()
        if self._threshold_reached_at is None:
            self._threshold_reached_at = now
        if now - self._threshold_reached_at >= self.settings.safemode_extension_s:
            self.state = SafeModeState.OFF
            log.info("left safe mode", blocks=total, reported=safe, datanodes=len(self.reported))
            self.events.submit(
                EventKind.SAFE_MODE_LEFT,
                f"left start-up safe mode: {safe} of {total} blocks reported by {len(self.reported)} DataNodes",
            )

    def enter(self) -> None:
        if self.state is not SafeModeState.MANUAL:
            self.events.submit(
                EventKind.SAFE_MODE_ENTERED,
                "safe mode entered by an operator: the namespace is read-only",
                severity=EventSeverity.WARNING,
            )
        self.state = SafeModeState.MANUAL
        log.warning("safe mode entered by an operator")

    def leave(self) -> None:
        if self.on:
            log.warning("safe mode left by an operator", state=self.state.value)
            self.events.submit(EventKind.SAFE_MODE_LEFT, f"{self.state.value} safe mode left by an operator")
        self.state = SafeModeState.OFF

    def follow(self, *, manual: bool, confirmed_elsewhere: bool) -> None:
        """Follow the cluster (namenode.leadership): an operator's safe mode is every NameNode's,
        and a NameNode that starts beside one that already confirmed the block map need not
        wait for full reports of its own (DataNodes report to one NameNode at a time)."""
        if manual and self.state is not SafeModeState.MANUAL:
            self.state = SafeModeState.MANUAL
            log.warning("safe mode entered by an operator (on another NameNode)")
        elif not manual and self.state is SafeModeState.MANUAL:
            self.state = SafeModeState.OFF
            log.warning("safe mode left by an operator (on another NameNode)")
        elif self.state is SafeModeState.STARTUP and confirmed_elsewhere:
            self.state = SafeModeState.OFF
            log.info("left start-up safe mode: another NameNode has confirmed the block map")
            self.events.submit(
                EventKind.SAFE_MODE_LEFT, "left start-up safe mode: another NameNode has confirmed the block map"
            )

    def status(self, session: Session) -> SafeModeStatus:
        total, safe = self._last = self.counts(session)
        if self.state is SafeModeState.OFF:
            message = "Safe mode is OFF."
        else:
            message = f"Safe mode is ON ({self.state.value}). {self._hint()}"
        return SafeModeStatus(
            state=self.state,
            blocks_total=total,
            blocks_safe=safe,
            threshold=self.settings.safemode_threshold,
            reported_datanodes=len(self.reported),
            message=message,
        )
