"""The leader lease on a real database: one holder at a time, takeover after expiry, and fencing
that keeps a deposed leader's background work from committing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from client.protocol.client_namenode import SafeModeState
from client.protocol.errors import NotLeaderError
from namenode.db import schema
from namenode.db.database import Database
from namenode.db.models import Event, LeaderLease
from namenode.leadership import Leadership
from tests.conftest import BACKENDS, backend_database
from tests.metadata.test_truncation import Clock

LEASE = 6.0


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with backend_database(request.param, f"sqlite:///{tmp_path / 'metadata.db'}") as url:
        assert url is not None
        database = Database(url)
        schema.upgrade(database.engine)
        database.start()
        try:
            yield database
        finally:
            database.close()


def leader(db: Database, clock: Clock, url: str) -> Leadership:
    return Leadership(url, lease_s=LEASE, forget_s=3600, clock=clock)


def round_(db: Database, node: Leadership) -> bool:
    return db.write_sync(lambda session: node.round(session, SafeModeState.OFF)).leader


def test_one_holder_takeover_after_expiry_and_fencing(db: Database) -> None:
    clock = Clock()
    a, b = leader(db, clock, "http://a"), leader(db, clock, "http://b")
    assert round_(db, a) and not round_(db, b)
    first_epoch = a.epoch
    clock.now += LEASE / 3
    assert round_(db, a) and not round_(db, b)  # renewed: b must wait
    assert a.epoch == first_epoch

    def work(node: Leadership) -> None:
        def run(session: Session) -> None:
            node.fence(session)
            session.add(Event(at=clock.now, kind="test", severity="info", message=node.url))

        db.write_sync(run)

    work(a)
    clock.now += LEASE + 1  # a is paused past its lease; b takes over
    assert round_(db, b)
    assert b.epoch == first_epoch + 1
    assert a.is_leader  # a has not noticed yet ...
    with pytest.raises(NotLeaderError):
        work(a)  # ... but its work cannot commit
    assert not a.is_leader
    work(b)
    messages = db.read_sync(lambda session: session.scalars(select(Event.message)).all())
    assert messages == ["http://a", "http://b"]
    assert not round_(db, a)  # it comes back as a follower


def test_resigning_hands_the_lease_over_at_once(db: Database) -> None:
    clock = Clock()
    a, b = leader(db, clock, "http://a"), leader(db, clock, "http://b")
    assert round_(db, a)
    db.write_sync(a.resign)
    assert round_(db, b)
    infos = db.read_sync(b.namenodes)
    assert [(info.url, info.leader, info.this) for info in infos] == [("http://b", True, True)]


def test_a_lease_nobody_renews_is_vacant(db: Database) -> None:
    clock = Clock()
    a = leader(db, clock, "http://a")
    assert db.read_sync(a.lease_is_vacant)
    assert round_(db, a)
    assert not db.read_sync(a.lease_is_vacant)
    clock.now += LEASE + 1
    assert db.read_sync(a.lease_is_vacant)
    lease = db.read_sync(lambda session: session.get_one(LeaderLease, 1))
    assert lease.holder == a.id


def test_a_namenode_restarted_at_the_same_url_takes_over_at_once(db: Database) -> None:
    clock = Clock()
    old = leader(db, clock, "http://a")
    assert round_(db, old)  # then killed: its lease would last LEASE more seconds
    new = leader(db, clock, "http://a")
    other = leader(db, clock, "http://b")
    assert not db.read_sync(new.lease_is_vacant)
    db.write_sync(new.retire_predecessors)
    assert db.read_sync(new.lease_is_vacant)
    assert round_(db, new) and not round_(db, other)
    assert {info.id for info in db.read_sync(new.namenodes)} == {new.id, other.id}
