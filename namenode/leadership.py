"""Several NameNodes on one database: exactly one leader runs the background work.

Every NameNode serves namespace requests and DataNode traffic, since all state is in SQL.
The background work (dead-node detection, lease recovery, the replication monitor, truncate
recovery, the balancer, event pruning) must run once per cluster, so a NameNode does it only
while it holds the lease row `leader_lease`:

- acquiring and renewing are one UPDATE: ``holder = me, expires_at = now + lease`` where the
  holder is already me or the lease has expired; the epoch grows when the holder changes;
- every background transaction first *fences*: an UPDATE that matches only while (holder,
  epoch) are still ours and the lease has not expired. The fence and the work commit together,
  and the database serialises the fence with a rival's takeover, so a deposed leader (paused,
  partitioned, its clock wrong) can never commit background work after someone else took over.
  Clocks only decide how soon a dead leader is replaced, never correctness;
- each NameNode also keeps a presence row (`namenodes`): its URL, when it was last seen, its
  safe-mode state, for the status page and for followers that start late.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, case, delete, select, update
from sqlalchemy.orm import Session

from client.protocol.client_namenode import NameNodeInfo, SafeModeState
from client.protocol.errors import NotLeaderError
from namenode.db.models import LeaderLease, NameNodeRow

log = structlog.get_logger(__name__)

LEASE_ROW = 1


@dataclass(frozen=True)
class LeaseState:
    """What one round learnt: who leads, whether it is us, and the cluster-wide operator safe mode."""

    leader: bool
    holder: str | None
    manual_safemode: bool
    live_peers_out_of_safemode: bool


class Leadership:
    """This NameNode's side of the lease: its identity, whether it leads, and the fence."""

    def __init__(self, url: str, *, lease_s: float, forget_s: float, clock: Callable[[], float] = time.time) -> None:
        self.id = f"NN-{uuid.uuid4().hex[:12]}"
        self.url = url
        self.lease_s = lease_s
        self.forget_s = forget_s
        self.clock = clock
        self.started_at = clock()
        self.epoch = 0
        self.is_leader = False
        #: Who held a live lease at the last round (None: vacant; it may be a leader that just died).
        self.leader_id: str | None = None

    def round(self, session: Session, safemode: SafeModeState) -> LeaseState:
        """Publish our presence, then acquire or renew the lease (one write transaction)."""
        now = self.clock()
        self._publish(session, now, safemode)
        session.execute(
            update(LeaderLease)
            .where(
                LeaderLease.id == LEASE_ROW,
                (LeaderLease.holder == self.id) | (LeaderLease.expires_at < now) | LeaderLease.holder.is_(None),
            )
            .values(
                holder=self.id,
                # SET expressions see the old row: the epoch grows only when the holder changes.
                epoch=case((LeaderLease.holder == self.id, LeaderLease.epoch), else_=LeaderLease.epoch + 1),
                expires_at=now + self.lease_s,
            )
            .execution_options(synchronize_session=False)
        )
        lease = session.execute(
            select(LeaderLease.holder, LeaderLease.epoch, LeaderLease.expires_at, LeaderLease.manual_safemode).where(
                LeaderLease.id == LEASE_ROW
            )
        ).one()
        was_leader = self.is_leader
        self.is_leader = lease.holder == self.id
        self.epoch = lease.epoch if self.is_leader else self.epoch
        self.leader_id = lease.holder if lease.expires_at >= now else None
        if self.is_leader and not was_leader:
            log.warning("became the leader NameNode", namenode_id=self.id, epoch=lease.epoch)
        elif was_leader and not self.is_leader:
            log.warning("lost the leader lease", namenode_id=self.id, new_leader=lease.holder)
        if self.is_leader:
            session.execute(delete(NameNodeRow).where(NameNodeRow.seen_at < now - self.forget_s))
        peers_out = session.scalar(
            select(NameNodeRow.id).where(
                NameNodeRow.id != self.id,
                NameNodeRow.seen_at >= now - self.lease_s,
                NameNodeRow.safemode == SafeModeState.OFF.value,
            )
        )
        return LeaseState(self.is_leader, self.leader_id, lease.manual_safemode, peers_out is not None)

    def _publish(self, session: Session, now: float, safemode: SafeModeState) -> None:
        row = session.get(NameNodeRow, self.id)
        if row is None:
            session.add(
                NameNodeRow(id=self.id, url=self.url, started_at=self.started_at, seen_at=now, safemode=safemode.value)
            )
        else:
            row.seen_at = now
            row.safemode = safemode.value
        session.flush()

    def check_leader(self, what: str) -> None:
        """NotLeaderError (naming the leader, when known) unless this NameNode leads."""
        if not self.is_leader:
            raise NotLeaderError(f"{what} runs on the leader NameNode; this one ({self.url}) is not the leader")

    def fence(self, session: Session) -> None:
        """Raise NotLeaderError unless we still hold the lease, inside the caller's transaction."""
        self.check_leader("background work")
        held = cast(
            CursorResult[Any],
            session.execute(
                update(LeaderLease)
                .where(
                    LeaderLease.id == LEASE_ROW,
                    LeaderLease.holder == self.id,
                    LeaderLease.epoch == self.epoch,
                    LeaderLease.expires_at >= self.clock(),
                )
                .values(epoch=self.epoch),
            ),
        ).rowcount
        if not held:
            self.is_leader = False
            raise NotLeaderError("the leader lease ran out before it was renewed, or another NameNode took it")

    def retire_predecessors(self, session: Session) -> None:
        """At start: a NameNode that had our URL is gone (we hold its port now), so its lease and
        its row end now rather than when they expire: a restarted leader takes over at once."""
        same_url = select(NameNodeRow.id).where(NameNodeRow.url == self.url, NameNodeRow.id != self.id)
        session.execute(
            update(LeaderLease)
            .where(LeaderLease.id == LEASE_ROW, LeaderLease.holder.in_(same_url))
            .values(expires_at=0.0)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(NameNodeRow)
            .where(NameNodeRow.url == self.url, NameNodeRow.id != self.id)
            .execution_options(synchronize_session=False)
        )

    def lease_is_vacant(self, session: Session) -> bool:
        """No live NameNode holds the lease (the cluster had no leader: e.g. every NameNode was down)."""
        lease = session.get(LeaderLease, LEASE_ROW)
        return lease is None or lease.holder is None or lease.expires_at < self.clock()

    def set_manual_safemode(self, session: Session, on: bool) -> None:
        session.execute(update(LeaderLease).where(LeaderLease.id == LEASE_ROW).values(manual_safemode=on))

    def resign(self, session: Session) -> None:
        """On a clean shutdown: hand the lease over at once instead of after it expires."""
        session.execute(
            update(LeaderLease).where(LeaderLease.id == LEASE_ROW, LeaderLease.holder == self.id).values(expires_at=0.0)
        )
        session.execute(delete(NameNodeRow).where(NameNodeRow.id == self.id))
        self.is_leader = False

    def namenodes(self, session: Session) -> list[NameNodeInfo]:
        """Every NameNode seen recently, for the status page and `dfs admin report`."""
        now = self.clock()
        lease = session.get(LeaderLease, LEASE_ROW)
        holder = lease.holder if lease is not None and lease.expires_at >= now else None
        rows = session.scalars(select(NameNodeRow).order_by(NameNodeRow.started_at)).all()
        return [
            NameNodeInfo(
                id=row.id,
                url=row.url,
                leader=row.id == holder,
                alive=row.seen_at >= now - self.lease_s,
                started_at=row.started_at,
                seen_at=row.seen_at,
                safemode=SafeModeState(row.safemode),
                this=row.id == self.id,
            )
            for row in rows
        ]
