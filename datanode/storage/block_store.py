"""A DataNode's replicas on disk and the in-memory map of them.

Layout (docs/storage.md):

    <data_dir>/VERSION                                   node id, cluster id, layout version (JSON)
    <data_dir>/current/finalized/subdirA/subdirB/blk_<id>  finalised data
    <data_dir>/current/finalized/.../blk_<id>_<gs>.meta    its checksums
    <data_dir>/current/rbw/blk_<id>, blk_<id>_<gs>.meta    replicas being written

Paths are built only from integer block ids and generation stamps, never from request
text. Finalising is: fsync data and meta, rename both into `finalized/`, fsync both
directories, so a finalised replica survives kill -9 and power loss.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from client.protocol.block_format import (
    META_HEADER_SIZE,
    block_file_name,
    decode_meta_header,
    finalized_subdir,
    meta_file_name,
    parse_meta_file_name,
)
from client.protocol.datanode_namenode import ReplicaState
from client.protocol.errors import ClusterMismatchError, ReplicaExistsError, ReplicaNotFoundError

log = structlog.get_logger(__name__)

LAYOUT_VERSION = 1


@dataclass(frozen=True)
class ReplicaInfo:
    """One replica as the store knows it."""

    block_id: int
    gen_stamp: int
    length: int
    state: ReplicaState
    directory: Path

    @property
    def data_path(self) -> Path:
        return self.directory / block_file_name(self.block_id)

    @property
    def meta_path(self) -> Path:
        return self.directory / meta_file_name(self.block_id, self.gen_stamp)


@dataclass
class StorageIdentity:
    datanode_id: str
    cluster_id: str | None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlockStore:
    """Thread-safe map of replicas plus the file operations that change it."""

    def __init__(self, data_dir: Path, capacity_limit: int | None = None, *, direct_io: bool = True) -> None:
        self.data_dir = data_dir
        self.capacity_limit = capacity_limit
        self.direct_io = direct_io  # replica writers may bypass the page cache (see replica_writer)
        self.current = data_dir / "current"
        self.finalized_dir = self.current / "finalized"
        self.rbw_dir = self.current / "rbw"
        self._replicas: dict[int, ReplicaInfo] = {}
        self._lock = threading.Lock()
        self.identity = StorageIdentity(datanode_id="", cluster_id=None)

    # --- start-up --------------------------------------------------------------------------

    def open(self) -> None:
        """Create or load the storage directory and index every replica on it."""
        self.finalized_dir.mkdir(parents=True, exist_ok=True)
        self.rbw_dir.mkdir(parents=True, exist_ok=True)
        self.identity = self._load_identity()
        started = time.monotonic()
        self._replicas = {}
        for directory, _dirs, files in os.walk(self.finalized_dir):
            self._index_directory(Path(directory), files, ReplicaState.FINALIZED)
        self._index_directory(self.rbw_dir, os.listdir(self.rbw_dir), ReplicaState.RBW)
        log.info("storage opened", replicas=len(self._replicas), seconds=round(time.monotonic() - started, 3))

    def _load_identity(self) -> StorageIdentity:
        version_file = self.data_dir / "VERSION"
        if version_file.exists():
            data = json.loads(version_file.read_text())
            return StorageIdentity(datanode_id=data["datanode_id"], cluster_id=data.get("cluster_id"))
        identity = StorageIdentity(datanode_id=f"DN-{uuid.uuid4()}", cluster_id=None)
        self._save_identity(identity)
        return identity

    def _save_identity(self, identity: StorageIdentity) -> None:
        version_file = self.data_dir / "VERSION"
        tmp = version_file.with_suffix(".tmp")
        payload = {
            "datanode_id": identity.datanode_id,
            "cluster_id": identity.cluster_id,
            "layout_version": LAYOUT_VERSION,
        }
        with tmp.open("w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, version_file)
        fsync_dir(self.data_dir)

    def adopt_cluster(self, cluster_id: str) -> None:
        """Remember the cluster on first registration; refuse a NameNode of another cluster."""
        if self.identity.cluster_id is None:
            self.identity.cluster_id = cluster_id
            self._save_identity(self.identity)
        elif self.identity.cluster_id != cluster_id:
            raise ClusterMismatchError(
                f"storage {self.data_dir} belongs to cluster {self.identity.cluster_id}, not {cluster_id}"
            )

    def _index_directory(self, directory: Path, names: list[str], state: ReplicaState) -> None:
        metas = {}
        for name in names:
            parsed = parse_meta_file_name(name)
            if parsed is not None:
                metas[parsed[0]] = parsed[1]
        for block_id, gen_stamp in metas.items():
            data_path = directory / block_file_name(block_id)
            meta_path = directory / meta_file_name(block_id, gen_stamp)
            if not data_path.exists() and not self._complete_interrupted_move(block_id, directory):
                log.warning("meta file without data file", meta=str(meta_path))
                continue
            length = data_path.stat().st_size
            if state is ReplicaState.RBW:
                length = self._recoverable_length(data_path, meta_path, length)
            existing = self._replicas.get(block_id)
            if existing is not None and existing.state is ReplicaState.FINALIZED:
                continue  # a finalised copy wins over a leftover rbw one
            self._replicas[block_id] = ReplicaInfo(block_id, gen_stamp, length, state, directory)

    def _complete_interrupted_move(self, block_id: int, directory: Path) -> bool:
        """A crash between the two renames of `_move` left the data file behind: bring it over.

        The data file moves first, so a meta file without its data means the data is still in the
        other directory, fully fsynced; the meta's directory decides where the replica is.
        """
        name = block_file_name(block_id)
        other_dir = self.finalized_dir / finalized_subdir(block_id) if directory == self.rbw_dir else self.rbw_dir
        elsewhere = other_dir / name
        if not elsewhere.exists() or self._has_meta(other_dir, block_id):
            return False  # absent, or it belongs to the replica whose meta file sits beside it
        os.replace(elsewhere, directory / name)
        fsync_dir(directory)
        fsync_dir(elsewhere.parent)
        log.warning("completed a replica move interrupted by a crash", block=block_id, directory=str(directory))
        return True

    @staticmethod
    def _has_meta(directory: Path, block_id: int) -> bool:
        prefix = f"{block_file_name(block_id)}_"
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return False
        return any(name.startswith(prefix) and parse_meta_file_name(name) is not None for name in names)

    @staticmethod
    def _recoverable_length(data_path: Path, meta_path: Path, data_length: int) -> int:
        """Bytes of an rbw replica that have checksums on disk (a crash can leave data ahead)."""
        try:
            with meta_path.open("rb") as meta:
                header = decode_meta_header(meta.read(META_HEADER_SIZE))
            digests = (meta_path.stat().st_size - META_HEADER_SIZE) // 8
        except (OSError, ValueError):
            return 0
        return min(data_length, digests * header.bytes_per_checksum)

    # --- queries ---------------------------------------------------------------------------

    def get(self, block_id: int) -> ReplicaInfo | None:
        with self._lock:
            return self._replicas.get(block_id)

    def finalized(self, block_id: int, min_gen_stamp: int) -> ReplicaInfo:
        """A finalised replica at least as new as `min_gen_stamp`, for reading or copying."""
        replica = self.get(block_id)
        if replica is None or replica.state is not ReplicaState.FINALIZED:
            raise ReplicaNotFoundError(f"no finalized replica of block {block_id} here")
        if replica.gen_stamp < min_gen_stamp:
            raise ReplicaNotFoundError(
                f"replica of block {block_id} is at generation {replica.gen_stamp}, older than {min_gen_stamp}"
            )
        return replica

    def snapshot(self) -> list[ReplicaInfo]:
        with self._lock:
            return list(self._replicas.values())

    def used_bytes(self) -> int:
        with self._lock:
            return sum(replica.length for replica in self._replicas.values())

    # --- changes (called from worker threads) ----------------------------------------------

    def create_rbw(self, block_id: int, gen_stamp: int, *, replace_existing_rbw: bool = False) -> ReplicaInfo:
        """Register a new replica being written; refuse if one already exists."""
        with self._lock:
            existing = self._replicas.get(block_id)
            if existing is not None:
                if existing.state is ReplicaState.FINALIZED or not replace_existing_rbw:
                    raise ReplicaExistsError(
                        f"block {block_id} already has a {existing.state.value} replica here "
                        f"(generation {existing.gen_stamp})"
                    )
                self._remove_files(existing)
            replica = ReplicaInfo(block_id, gen_stamp, 0, ReplicaState.RBW, self.rbw_dir)
            self._replicas[block_id] = replica
            return replica

    def update(self, replica: ReplicaInfo) -> None:
        with self._lock:
            self._replicas[replica.block_id] = replica

    def finalize(self, replica: ReplicaInfo) -> ReplicaInfo:
        """Move a fully written, already fsynced rbw replica into `finalized/` durably."""
        target_dir = self._finalized_dir_for(replica.block_id)
        return self._move(replica, target_dir, ReplicaState.FINALIZED)

    def unfinalize(self, replica: ReplicaInfo) -> ReplicaInfo:
        """Move a finalised replica back to `rbw/` so a recovering pipeline can rewrite its tail."""
        return self._move(replica, self.rbw_dir, ReplicaState.RBW)

    def _move(self, replica: ReplicaInfo, target_dir: Path, state: ReplicaState) -> ReplicaInfo:
        """Data first, then meta: the meta file's directory is where the replica is (see `open`)."""
        moved = replace(replica, state=state, directory=target_dir)
        os.replace(replica.data_path, moved.data_path)
        os.replace(replica.meta_path, moved.meta_path)
        fsync_dir(target_dir)
        fsync_dir(replica.directory)
        self.update(moved)
        return moved

    def _finalized_dir_for(self, block_id: int) -> Path:
        """The replica's subdirectory, created durably (each new level fsynced in its parent)."""
        target = self.finalized_dir / finalized_subdir(block_id)
        if not target.is_dir():
            for level in (target.parent, target):
                if not level.is_dir():
                    level.mkdir(exist_ok=True)
                    fsync_dir(level.parent)
        return target

    def delete(self, block_id: int, gen_stamp: int) -> bool:
        """Delete a replica if its stamp is not newer than `gen_stamp`; True if it was removed."""
        with self._lock:
            replica = self._replicas.get(block_id)
            if replica is None or replica.gen_stamp > gen_stamp:
                return False
            del self._replicas[block_id]
            self._remove_files(replica)
            return True

    def forget(self, block_id: int) -> None:
        """Drop a replica from the map after its files were found damaged or missing."""
        with self._lock:
            self._replicas.pop(block_id, None)

    def discard(self, replica: ReplicaInfo) -> None:
        """Drop a replica that never held data: from the map and from the disk."""
        with self._lock:
            if self._replicas.get(replica.block_id) == replica:
                del self._replicas[replica.block_id]
            self._remove_files(replica)

    @staticmethod
    def _remove_files(replica: ReplicaInfo) -> None:
        # Meta first: a crash in between leaves a lone data file (ignored), never a lone meta file,
        # which start-up would take for an interrupted move.
        for path in (replica.meta_path, replica.data_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def disk_usage(self) -> tuple[int, int]:
        """(capacity, remaining): the file system's, or within the configured capacity limit."""
        usage = shutil.disk_usage(self.data_dir)
        if self.capacity_limit is None:
            return usage.total, usage.free
        return self.capacity_limit, max(0, min(usage.free, self.capacity_limit - self.used_bytes()))
