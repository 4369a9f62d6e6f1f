"""Single-writer leases: a file under construction belongs to one client until it completes.

A holder renews all its leases at once. Past the soft limit another client may take
the file over (after recovering it); past the hard limit the NameNode recovers the
file on its own, so a crashed writer never leaves a file locked forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from client.protocol.errors import DfsFileNotFoundError, LeaseExpiredError
from namenode.config import NameNodeSettings
from namenode.db.models import Inode, Lease

#: Holder of the leases the NameNode takes itself (a file whose last block is being cut by a
#: truncate). They never expire: the NameNode releases them when the recovery is done.
NAMENODE_LEASE_HOLDER = "DFS_NameNode"


class LeaseManager:
    def __init__(self, settings: NameNodeSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock

    def grant(self, session: Session, inode: Inode, holder: str) -> None:
        session.add(Lease(inode_id=inode.id, holder=holder, last_renewed=self.clock()))

    def lease_of(self, session: Session, inode_id: int) -> Lease | None:
        return session.get(Lease, inode_id)

    def soft_expired(self, lease: Lease) -> bool:
        if lease.holder == NAMENODE_LEASE_HOLDER:
            return False  # a recovery in progress: nobody may take the file over
        return self.clock() - lease.last_renewed > self.settings.lease_soft_limit_s

    def check(self, session: Session, file_id: int, holder: str, path: str) -> Inode:
        """The file `holder` is writing; LeaseExpired if it is not (or no longer) theirs."""
        inode = session.get(Inode, file_id)
        if inode is None or inode.is_dir:
            raise DfsFileNotFoundError(f"File does not exist (deleted while being written): {path}", path=path)
        lease = session.get(Lease, file_id)
        if not inode.under_construction or lease is None:
            raise LeaseExpiredError(f"{path} is not open for writing by {holder} (lease lost)", path=path)
        if lease.holder != holder:
            raise LeaseExpiredError(f"{path} is being written by {lease.holder}, not {holder}", path=path)
        return inode

    def renew(self, session: Session, holder: str) -> int:
        """Renew every lease of `holder`; returns how many it holds."""
        result = session.execute(update(Lease).where(Lease.holder == holder).values(last_renewed=self.clock()))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def release(self, session: Session, inode_id: int) -> None:
        lease = session.get(Lease, inode_id)
        if lease is not None:
            session.delete(lease)

    def hard_expired(self, session: Session, limit: int = 100) -> list[int]:
        """Files whose writer has been silent past the hard limit (the NameNode's own leases excepted)."""
        cutoff = self.clock() - self.settings.lease_hard_limit_s
        return list(
            session.scalars(
                select(Lease.inode_id)
                .where(Lease.last_renewed < cutoff, Lease.holder != NAMENODE_LEASE_HOLDER)
                .order_by(Lease.last_renewed)
                .limit(limit)
            )
        )
