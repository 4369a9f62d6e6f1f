"""The FUSE operations: a thin adapter from POSIX calls to the SDK, the metadata cache and open files.

Errors are the SDK's own `DfsError`s, which are OSErrors with the errno a program expects
(ENOENT, EEXIST, ENOTEMPTY, ENOSPC, EIO, ...); the FUSE layer hands that errno to the
kernel. Anything else is a bug: it is logged with its traceback and reported as EIO.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx

from client import DFSClient, FileStatus
from client.identity import acting_as, acting_user
from client.protocol import paths
from client.protocol.errors import DfsFileExistsError, DfsFileNotFoundError
from fuse_mount.attributes import group_name, owner_name, stat_result
from fuse_mount.handles import HandleTable
from fuse_mount.metadata_cache import CONTENT_ONLY, STATAHEAD_PAGE, ParentChange, UserScopedCache
from fuse_mount.writing import OpenFile

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

RENAME_NOREPLACE = 1
STATFS_TTL_S = 5.0
#: statvfs fragment size: `df` counts in these.
FRAGMENT = 4096


def _errors_as_errno(method: Callable[P, T]) -> Callable[P, T]:
    """Run one FUSE call as the calling process's user; OSErrors pass through with their errno
    (a NameNode refusal is EACCES); transport failures are EIO; bugs are logged, then EIO."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        operations = args[0] if args else None
        try:
            with acting_as(operations.caller_user() if isinstance(operations, DfsOperations) else None):
                return method(*args, **kwargs)
        except OSError:
            raise
        except httpx.HTTPError as exc:
            log.warning("%s%s: %s", method.__name__, args[1:2], exc)
            raise OSError(errno.EIO, str(exc)) from exc
        except UnicodeEncodeError as exc:
            raise OSError(errno.EILSEQ, "file names must be valid UTF-8") from exc
        except Exception as exc:
            log.exception("%s%s failed", method.__name__, args[1:2])
            raise OSError(errno.EIO, str(exc)) from exc

    return wrapper


def _check_path(path: str | None) -> str:
    """A path as the kernel sent it, checked against the namespace's rules with POSIX errnos."""
    if path is None:
        raise OSError(errno.EBADF, "no path")
    path.encode("utf-8")  # names that are not UTF-8 arrive with surrogate escapes: EILSEQ
    if any(len(name.encode()) > paths.MAX_NAME_BYTES for name in path.split("/")):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), path)
    return paths.validate_path(path)


#: Who is calling: (uid, gid, pid) of the process behind the current request.
CallerLookup = Callable[[], tuple[int, int, int]]


class DfsOperations:
    """Every call a mounted file system serves, backed by one DFSClient (mfusepy's Operations protocol)."""

    use_ns = True  # times in nanoseconds

    def __init__(
        self,
        fs: DFSClient,
        *,
        caller: CallerLookup,
        cache_ttl: float = 1.0,
        read_only: bool = False,
        spool_dir: Path | None = None,
    ) -> None:
        self.fs = fs
        self.caller = caller
        self.cache_ttl = cache_ttl
        self.read_only = read_only
        self.cache = UserScopedCache(cache_ttl)
        self.table = HandleTable(fs, spool_dir)
        self._statfs: tuple[float, dict[str, int]] | None = None
        self._statfs_lock = threading.Lock()
        self._own_uid = os.getuid()

    # --- lifecycle -----------------------------------------------------------------------------

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        if config_3 is not None:
            config_3.attr_timeout = self.cache_ttl
            config_3.entry_timeout = self.cache_ttl
            config_3.negative_timeout = self.cache_ttl
            config_3.hard_remove = 1  # no .fuse_hidden renames: deletion is ours to handle
            config_3.use_ino = 1  # inode numbers are file ids: stable for tar, rsync, find
            config_3.auto_cache = 1  # keep page cache across opens unless size/mtime changed
        log.info("mounted: %s as user %s", self.fs.namenode, self.fs.user)

    def destroy(self, path: str) -> None:
        """Unmounting: whatever is still open and written becomes durable first."""
        self.table.drain(lambda file, exc: log.error("could not sync %s at unmount: %s", file.path, exc))
        log.info("unmounted")

    # --- metadata ------------------------------------------------------------------------------

    def _status(self, path: str) -> FileStatus:
        found, status = self.cache.lookup(path)
        if found:
            if status is None:
                raise DfsFileNotFoundError(f"{path} does not exist", path=path)
            return status
        try:
            status = self.fs.status(path)
        except DfsFileNotFoundError:
            self.cache.remember(path, None)
            raise
        self.cache.remember(path, status)
        self._read_ahead(path)
        return status

    def _read_ahead(self, path: str) -> None:
        """Statahead (metadata_cache): after a few misses in a row among one directory's names,
        one listing page from `path` on fills the cache for the names that follow. Best effort:
        a failure here is not the lookup's."""
        cache = self.cache.mine()
        if not cache.statahead.missed(path):
            return
        directory, name = paths.parent(path), paths.basename(path)
        generation = cache.generation()
        try:
            page = self.fs.run(self.fs.aio.rpc.list_page(directory, name, STATAHEAD_PAGE))
        except Exception as exc:
            cache.statahead.abandoned(directory, failed=True)
            log.debug("statahead of %s failed: %s", directory, exc)
            return
        except BaseException:
            cache.statahead.abandoned(directory)
            raise
        if cache.remember_page(page.entries, generation):
            last = page.entries[-1].name if page.entries else None
            cache.statahead.listed(directory, name, last, page.has_more)
        else:
            cache.statahead.abandoned(directory)

    @_errors_as_errno
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        file = self.table.get(fh).file if fh else self.table.file(_check_path(path))
        if file is not None and (file.dirty or file.mtime_ms is not None or file.deleted):
            return stat_result(file.status, length=file.length, mtime_ms=file.mtime_ms)
        return stat_result(self._status(file.path if file is not None else _check_path(path)))

    @_errors_as_errno
    def opendir(self, path: str) -> int:
        if not self._status(_check_path(path)).is_dir:
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        return 0

    @_errors_as_errno
    def readdir(self, path: str, fh: int) -> list[Any]:
        """The whole directory in a few NameNode calls (10,000 entries a page); each entry's
        status is cached, so the `stat` of every name that follows costs nothing."""
        path = _check_path(path)
        entries = self.cache.listing(path)
        if entries is None:
            entries = self.fs.list(path)
            self.cache.remember_listing(path, entries)
        listing: list[Any] = [".", ".."]
        for entry in entries:
            listing.append((entry.name, {"st_mode": stat_result(entry)["st_mode"], "st_ino": entry.file_id}, 0))
        return listing

    @_errors_as_errno
    def statfs(self, path: str) -> dict[str, int]:
        """Cluster capacity as `df` shows it (refreshed every few seconds)."""
        with self._statfs_lock:
            now = time.monotonic()
            if self._statfs is None or now - self._statfs[0] > STATFS_TTL_S:
                report = self.fs.report()
                blocks, free = report.capacity // FRAGMENT, report.remaining // FRAGMENT
                inodes = report.files + report.directories
                self._statfs = (
                    now,
                    {
                        "f_bsize": 1024 * 1024,
                        "f_frsize": FRAGMENT,
                        "f_blocks": blocks,
                        "f_bfree": free,
                        "f_bavail": free,
                        "f_files": inodes + free,
                        "f_ffree": free,
                        "f_favail": free,
                        "f_namemax": paths.MAX_NAME_BYTES,
                    },
                )
            return self._statfs[1]

    # --- namespace changes ---------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def caller_user(self) -> str | None:
        """The DFS user the calling process acts as (allow_other mounts): its local user name, or
        its uid without one; None (the mount's own user) for the mount's own uid and for requests
        the kernel makes by itself. New entries are thereby the caller's, and the NameNode checks
        the caller's permissions. In token mode the token decides instead (client.identity)."""
        uid, _gid, pid = self.caller()
        if uid < 0 or pid <= 0 or uid == self._own_uid:
            return None
        return owner_name(uid)

    @_errors_as_errno
    def mkdir(self, path: str, mode: int) -> int:
        self._writable()
        path = _check_path(path)
        try:
            created = self.fs.mkdirs(path, mode & 0o7777, parents=False)
        except BaseException:
            self.cache.invalidate(path)
            raise
        self.cache.invalidate(path, parent=ParentChange(created.mtime, +1))
        return 0

    @_errors_as_errno
    def rmdir(self, path: str) -> int:
        self._writable()
        path = _check_path(path)
        if not self._status(path).is_dir:
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        try:
            self.fs.delete(path, recursive=False)
        except BaseException:
            self.cache.invalidate(path, subtree=True)
            raise
        self.cache.invalidate(path, subtree=True, parent=ParentChange(_now_ms(), -1))
        return 0

    @_errors_as_errno
    def unlink(self, path: str) -> int:
        self._writable()
        path = _check_path(path)
        if self._status(path).is_dir:
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        for file in self.table.forget(path):
            file.discard()
        try:
            self.fs.delete(path)
        except BaseException:
            self.cache.invalidate(path)
            raise
        # The NameNode set the directory's mtime to its clock: ours is as good within the TTL.
        self.cache.invalidate(path, parent=ParentChange(_now_ms(), -1))
        return 0

    @_errors_as_errno
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        """Atomic on the NameNode; open files under `old` are synced first and follow the move."""
        self._writable()
        old, new = _check_path(old), _check_path(new)
        if flags & ~RENAME_NOREPLACE:
            raise OSError(errno.EINVAL, "only RENAME_NOREPLACE is supported")
        for file in self.table.files_under(old) + self.table.files_under(new):
            file.sync()
        try:
            self.fs.rename(old, new, overwrite=not flags & RENAME_NOREPLACE)
        finally:
            self.cache.invalidate(old, subtree=True)
            self.cache.invalidate(new, subtree=True)
        if old != new:
            for file in self.table.forget(new, subtree=True):
                file.discard()  # replaced by the rename
            self.table.moved(old, new)
        return 0

    @_errors_as_errno
    def chmod(self, path: str, mode: int) -> int:
        self._writable()
        path = _check_path(path)
        self._after_attributes(path, self.fs.set_permission(path, mode & 0o7777))
        return 0

    @_errors_as_errno
    def chown(self, path: str, uid: int, gid: int) -> int:
        self._writable()
        path = _check_path(path)
        owner = owner_name(uid) if uid != -1 else None
        group = group_name(gid) if gid != -1 else None
        if owner is None and group is None:
            return 0
        self._after_attributes(path, self.fs.set_owner(path, owner, group))
        return 0

    @_errors_as_errno
    def utimens(self, path: str, times: tuple[int | None, int | None] | None = None) -> int:
        """`times` is (atime, mtime) in ns, either None to leave it (UTIME_OMIT); None: both now."""
        self._writable()
        path = _check_path(path)
        file = self.table.file(path)
        if file is not None and file.dirty:
            file.sync()  # completing the file would stamp it again, after this
        now_ns = time.time_ns()
        atime_ns, mtime_ns = times if times is not None else (now_ns, now_ns)
        status = self.fs.set_times(
            path,
            mtime=None if mtime_ns is None else mtime_ns // 1_000_000,
            atime=None if atime_ns is None else atime_ns // 1_000_000,
        )
        self._after_attributes(path, status)
        return 0

    def _after_attributes(self, path: str, status: FileStatus) -> None:
        self.cache.invalidate(path)
        file = self.table.file(path)
        if file is not None:
            file.status = status

    @_errors_as_errno
    def symlink(self, target: str, source: str) -> int:
        raise OSError(errno.EPERM, "symbolic links are not supported", target)

    @_errors_as_errno
    def link(self, target: str, source: str) -> int:
        raise OSError(errno.EPERM, "hard links are not supported", target)

    @_errors_as_errno
    def mknod(self, path: str, mode: int, dev: int) -> int:
        raise OSError(errno.EPERM, "only regular files and directories are supported", path)

    # --- files ---------------------------------------------------------------------------------

    @_errors_as_errno
    def create(self, path: str, mode: int, flags: int) -> int:
        self._writable()
        path = _check_path(path)
        try:
            stream = self.fs.run(self.fs.aio.create(path, mode=mode & 0o7777, create_parents=False))
        except DfsFileExistsError:
            self.cache.invalidate(path)
            if flags & os.O_EXCL:
                raise
            return self.open(path, flags)  # created meanwhile by another client: open it as it is
        except BaseException:
            self.cache.invalidate(path)
            raise
        # The NameNode gave the directory the new file's mtime.
        self.cache.invalidate(path, parent=ParentChange(stream.status.mtime, +1))
        number, handle = self.table.open(path, stream.status, writable=True, user=acting_user())
        handle.file.adopt_writer(stream)
        return number

    @_errors_as_errno
    def open(self, path: str, flags: int) -> int:
        path = _check_path(path)
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        if writable or flags & os.O_TRUNC:
            self._writable()
        status = self._status(path)
        if status.is_dir:
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        number, handle = self.table.open(path, status, writable=writable, user=acting_user())
        if not writable and not handle.file.dirty:
            try:
                handle.reader.start(path, handle.file.version)  # EACCES here, not at the first read
            except BaseException:
                self.release(path, number)
                raise
        if flags & os.O_TRUNC:
            try:
                handle.file.truncate(0)
            except BaseException:
                self.release(path, number)
                raise
            self.cache.invalidate(path)
        return number

    @_errors_as_errno
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        handle = self.table.get(fh)
        file = handle.file
        local = file.read_local(size, offset)
        if local is not None:
            return local
        with acting_as(handle.user):  # a descriptor keeps its opener's rights (POSIX)
            return handle.reader.read(file.path, size, offset, file.version)

    @_errors_as_errno
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        handle = self.table.get(fh)
        if not handle.writable:
            raise OSError(errno.EBADF, "file not open for writing")
        with acting_as(handle.user):
            return handle.file.write(data, offset)

    @_errors_as_errno
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self._writable()
        if fh:
            file = self.table.get(fh).file
        else:
            checked = _check_path(path)
            file = self.table.file(checked) or self._transient(checked)
        try:
            file.truncate(length)
            if file.handles == 0:
                file.sync()  # nobody has it open: done now
        finally:
            if file.handles == 0:
                file.release()
            self.cache.invalidate(file.path)
        return 0

    def _transient(self, path: str) -> OpenFile:
        status = self._status(path)
        if status.is_dir:
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        return OpenFile(self.fs, path, status, self.table.spool_dir)

    @_errors_as_errno
    def flush(self, path: str, fh: int) -> int:
        """close(2): everything written is durable before this returns; its errors are close's."""
        handle = self.table.get(fh)
        if handle.writable:
            parent = _parent_change(handle.file)
            try:
                with acting_as(handle.user):
                    handle.file.sync()
            finally:
                self.cache.invalidate(handle.file.path, parent=parent)
        return 0

    @_errors_as_errno
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        return self.flush(path, fh)

    @_errors_as_errno
    def release(self, path: str, fh: int) -> int:
        try:
            handle = self.table.get(fh)  # the kernel may release on its own: act as the opener
        except OSError:
            return 0  # released already
        file = self.table.release(fh)
        if file is not None:
            # What a release syncs changes the file; a file only read changed nothing (and the
            # flush of every writable handle already invalidated what it wrote).
            changed, parent = handle.writable or file.dirty, _parent_change(file)
            with acting_as(handle.user):
                file.release()
            if changed:
                self.cache.invalidate(file.path, parent=parent)
        return 0


def _parent_change(file: OpenFile) -> ParentChange | None:
    """What syncing `file` does to its directory: nothing for a streamed file (completing it
    changes the file only); a spooled one is renamed over the original (unknown mtime: drop it)."""
    return None if file.spooled else CONTENT_ONLY


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
