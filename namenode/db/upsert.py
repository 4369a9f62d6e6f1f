"""INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from namenode.db.models import Base

#: Rows per statement: well under SQLite's 32,766 bound parameters for our widest table.
CHUNK = 2000


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, silently skipping any whose primary key already exists."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        statement = insert(model).values(list(rows[start : start + CHUNK])).on_conflict_do_nothing()
        session.execute(statement)
