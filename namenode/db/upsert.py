"""INSERT ... ON CONFLICT on both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from namenode.db.models import Base

#: Rows per statement: well under SQLite's 32,766 bound parameters for our widest table.
CHUNK = 2000


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, silently skipping any whose primary key already exists."""
    insert = _insert(session)
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(model).values(list(rows[start : start + CHUNK])).on_conflict_do_nothing())


def upsert_min(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *, key: str, column: str) -> None:
    """Insert `rows`; where `key` exists already, keep the smaller of the two values of `column`."""
    insert = _insert(session)
    table = model.__table__
    for start in range(0, len(rows), CHUNK):
        statement = insert(model).values(list(rows[start : start + CHUNK]))
        proposed, current = statement.excluded[column], table.c[column]
        statement = statement.on_conflict_do_update(
            index_elements=[key], set_={column: case((proposed < current, proposed), else_=current)}
        )
        session.execute(statement)
