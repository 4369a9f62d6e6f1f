"""Crash points: the NameNode kills itself (SIGKILL) at a named moment of one operation.

Random kill -9s rarely land inside the few milliseconds that matter, so the crash-consistency tests
(tests/cluster/test_namenode_crash.py) name the moment instead: ``DFS_NAMENODE_CRASH_AT=complete:
after_commit`` makes the first `complete` whose transaction has committed kill the process before
it answers. ``before_commit`` kills it inside the transaction, after the operation's changes were
made but before the group commit: the database must come back as if the call never happened.
SIGKILL, not an exception: no `finally`, no rollback, no answer — exactly a crash. Unset (the
default), each check is one attribute test.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

import structlog
from sqlalchemy.orm import Session

T = TypeVar("T")
log = structlog.get_logger(__name__)

#: Operations that have crash points (the mutations a put, a rename or a delete is made of).
OPERATIONS = ("mkdirs", "create", "add_block", "complete", "rename", "delete", "append")


class Moment(StrEnum):
    BEFORE_COMMIT = "before_commit"
    AFTER_COMMIT = "after_commit"


def parse(spec: str) -> tuple[str, Moment] | None:
    """ "op:moment" -> (op, moment); "" -> None; anything else is a ValueError naming the choices."""
    if not spec:
        return None
    operation, _, moment = spec.partition(":")
    if operation not in OPERATIONS or moment not in set(Moment):
        raise ValueError(
            f"crash point {spec!r}: expected OPERATION:MOMENT with OPERATION one of {', '.join(OPERATIONS)} "
            f"and MOMENT one of {', '.join(Moment)}"
        )
    return operation, Moment(moment)


class CrashPoints:
    def __init__(self, spec: str) -> None:
        self.armed = parse(spec)

    def inside(self, operation: str, fn: Callable[[Session], T]) -> Callable[[Session], T]:
        """`fn`, made to crash after it ran in its transaction (if armed for `operation` before commit)."""
        if self.armed != (operation, Moment.BEFORE_COMMIT):
            return fn

        def run_then_crash(session: Session) -> T:
            result = fn(session)
            session.flush()  # the changes are in the transaction, as far as a crash can catch them
            self._crash(operation, Moment.BEFORE_COMMIT)
            return result

        return run_then_crash

    def after_commit(self, operation: str) -> None:
        """Crash here if armed for `operation` after commit (the caller has committed, not answered)."""
        if self.armed == (operation, Moment.AFTER_COMMIT):
            self._crash(operation, Moment.AFTER_COMMIT)

    @staticmethod
    def _crash(operation: str, moment: Moment) -> None:
        log.warning("crash point reached: killing the NameNode", operation=operation, moment=str(moment))
        os.kill(os.getpid(), signal.SIGKILL)
