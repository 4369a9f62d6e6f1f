"""Engine ownership, the one transaction helper, and group commit.

Every mutation is a function ``fn(session) -> result`` handed to `Database.write`. One
writer thread owns the write connection: it takes whatever mutations are queued,
runs each in its own SAVEPOINT (so one failing operation does not undo its
neighbours) and commits them together. On SQLite with ``synchronous=FULL`` the commit
is the fsync, so concurrent clients share one fsync instead of queueing for one each
(group commit); nothing is acknowledged before its commit returns. Reads run on a
small thread pool with their own connections (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from client.protocol.errors import DfsError, InternalError

T = TypeVar("T")
log = structlog.get_logger(__name__)

MAX_BATCH = 128
MAX_ATTEMPTS = 5


@dataclass
class _WriteItem:
    fn: Callable[[Session], Any]
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    #: The submitter's context variables (request id, log bindings), for lines `fn` logs.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


def _configure_sqlite(engine: Engine, *, begin: str) -> None:
    """WAL + synchronous=FULL: an acknowledged commit survives kill -9 and power loss."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (SAVEPOINTs need it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


class Database:
    """Owns the engine; serialises writes through a group-committing writer thread."""

    def __init__(self, url: str | URL, *, readers: int = 8) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._make_engine(pool_size=readers + 1, writer=False)
        self._write_engine = self._make_engine(pool_size=1, writer=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self._queue: queue.SimpleQueue[_WriteItem | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = concurrent.futures.ThreadPoolExecutor(readers, thread_name_prefix="db-read")
        #: Commits made and operations they carried: items / batches is the group-commit factor.
        self.batches_committed = 0
        self.items_committed = 0

    def _make_engine(self, *, pool_size: int, writer: bool) -> Engine:
        kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 2 if not writer else 0}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # The writer pings a connection before using it: a write on a connection the server
            # dropped could fail at its COMMIT, where nobody knows whether it took effect. A read
            # needs no ping (one more round trip each): on a dropped connection it fails, the pool
            # is invalidated, and read_sync runs it again on a fresh one.
            kwargs["pool_pre_ping"] = writer
            # Reads: one snapshot each, as SQLite WAL gives. The writer: SERIALIZABLE, so that the
            # writers of several NameNodes on one database (namenode.leadership) interleave only in
            # ways equivalent to one at a time; a conflict is a serialisation failure, retried
            # (one NameNode alone never conflicts: its writes are serial already). SQLite gets the
            # same from BEGIN IMMEDIATE, which takes the database's one write lock.
            kwargs["isolation_level"] = "SERIALIZABLE" if writer else "REPEATABLE READ"
        engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(engine, begin="BEGIN IMMEDIATE" if writer else "BEGIN")
        return engine

    @property
    def engines(self) -> tuple[Engine, Engine]:
        """The reader and the writer engine (for instrumentation such as query timing)."""
        return self.engine, self._write_engine

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="db-writer", daemon=True)
            self._writer.start()

    def close(self) -> None:
        """Finish queued writes, stop the writer, release connections."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30)
            self._writer = None
        self._readers.shutdown(wait=True)
        self.engine.dispose()
        self._write_engine.dispose()

    # --- public API ------------------------------------------------------------------------

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run a mutation in the writer thread; returns once it is durably committed."""
        return await asyncio.wrap_future(self.submit_write(fn))

    def write_sync(self, fn: Callable[[Session], T]) -> T:
        """Blocking variant of `write`, for background threads."""
        return self.submit_write(fn).result()

    def submit_write(self, fn: Callable[[Session], T]) -> concurrent.futures.Future[T]:
        if self._writer is None:
            raise InternalError("metadata store is not running")
        item = _WriteItem(fn)
        self._queue.put(item)
        return item.future

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run a read-only function in one consistent transaction on the reader pool."""
        loop = asyncio.get_running_loop()
        # In the caller's context, so lines `fn` logs carry its request id.
        return await loop.run_in_executor(self._readers, contextvars.copy_context().run, self.read_sync, fn)

    def read_sync(self, fn: Callable[[Session], T]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self._sessions() as session, session.begin():
                    return fn(session)
            except DBAPIError as exc:
                if attempt == MAX_ATTEMPTS - 1 or not (exc.connection_invalidated or _is_transient(exc)):
                    raise
        raise AssertionError("unreachable")

    def session(self) -> Session:
        """A plain session for start-up work (schema checks, formatting)."""
        return self._sessions()

    # --- writer ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit_batch(batch)
            if stop:
                return

    def _commit_batch(self, batch: list[_WriteItem]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                outcomes = self._run_batch(batch)
            except DBAPIError as exc:
                if len(batch) > 1:
                    # The commit itself failed: isolate the culprit by going one by one.
                    for item in batch:
                        self._commit_batch([item])
                    return
                if attempt < MAX_ATTEMPTS - 1 and _is_transient(exc):
                    time.sleep(0.002 * 4**attempt)  # let the other writer (another NameNode) finish
                    continue
                log.error("metadata write failed", error=str(exc))
                _deliver(batch[0], None, InternalError(f"metadata store error: {exc.orig}"))
                return
            self.batches_committed += 1
            self.items_committed += len(batch)
            retry: list[_WriteItem] = []
            for item, (result, error) in zip(batch, outcomes, strict=True):
                if len(batch) > 1 and isinstance(error, DBAPIError) and _is_transient(error):
                    retry.append(item)
                elif isinstance(error, DBAPIError):
                    log.error("metadata write failed", error=str(error))
                    _deliver(item, None, InternalError(f"metadata store error: {error.orig}"))
                else:
                    _deliver(item, result, error)
            for item in retry:
                self._commit_batch([item])
            return

    def _run_batch(self, batch: list[_WriteItem]) -> list[tuple[Any, BaseException | None]]:
        """Run every item in one transaction, each inside its own SAVEPOINT when batched."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        with self._write_sessions() as session:
            if len(batch) == 1:
                try:
                    outcomes.append((batch[0].context.run(batch[0].fn, session), None))
                except DBAPIError:
                    raise
                except Exception as exc:
                    session.rollback()
                    return [(None, _domain_error(exc))]
            else:
                for item in batch:
                    savepoint = session.begin_nested()
                    try:
                        outcomes.append((item.context.run(item.fn, session), None))
                        savepoint.commit()
                    except Exception as exc:
                        savepoint.rollback()
                        outcomes.append((None, exc if isinstance(exc, DBAPIError) else _domain_error(exc)))
            session.commit()
        return outcomes


def _domain_error(exc: Exception) -> BaseException:
    """Domain errors pass through; anything else is a bug, logged and reported as INTERNAL."""
    if isinstance(exc, DfsError):
        return exc
    log.exception("unexpected error in metadata write", exc_info=exc)
    return InternalError(f"internal error: {type(exc).__name__}: {exc}")


def _deliver(item: _WriteItem, result: Any, error: BaseException | None) -> None:
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(result)


def _is_transient(exc: DBAPIError) -> bool:
    """Lock timeouts and serialisation failures are worth a retry; anything else is not."""
    text = str(exc.orig).lower()
    return any(marker in text for marker in ("database is locked", "could not serialize", "deadlock detected", "busy"))
