"""A NameNode service object on a real metadata database (SQLite or PostgreSQL), without HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from namenode.app import prepare_database
from namenode.config import NameNodeSettings
from namenode.db.database import Database
from namenode.service import NameNode
from tests.conftest import backend_database


@contextlib.contextmanager
def in_process_namenode(backend: str, tmp_path: Path, user: str, **settings: Any) -> Iterator[NameNode]:
    """A formatted, started NameNode out of safe mode, with `user` as its superuser."""
    with backend_database(backend, f"sqlite:///{tmp_path / 'metadata.db'}") as url:
        assert url is not None
        config = NameNodeSettings(db_url=url, superuser=user, data_dir=tmp_path / "nn", **settings)
        db = Database(url)
        cluster_id = prepare_database(db, config)
        db.start()
        namenode = NameNode(config, db, cluster_id)
        namenode.safemode.leave()
        try:
            yield namenode
        finally:
            db.close()
