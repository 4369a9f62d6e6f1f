"""Turning NameNode file statuses into POSIX `stat` results, and local ids into DFS names.

The namespace stores owners and groups as names (HDFS style); a mount shows them as the
local uid/gid of the same name, so `ls -l` and the kernel's permission checks
(`default_permissions`) see what an administrator expects. A name with no local account
shows as the mounting user's id, and a numeric name (what `chown 1234` stores for an id
with no name here) as that number.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from functools import lru_cache
from typing import Any

from client import FileStatus

#: `st_blksize`: the I/O size programs (cp, cat) pick their buffers from.
PREFERRED_IO_SIZE = 1024 * 1024
NS_PER_MS = 1_000_000


@lru_cache(maxsize=4096)
def uid_of(owner: str) -> int:
    """The local uid for a DFS owner name."""
    if owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        return os.getuid()


@lru_cache(maxsize=4096)
def gid_of(group: str) -> int:
    """The local gid for a DFS group name."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return os.getgid()


@lru_cache(maxsize=4096)
def owner_name(uid: int) -> str:
    """The DFS owner name for a local uid (its number if it has no name here)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    """The DFS group name for a local gid (its number if it has no name here)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def stat_result(status: FileStatus, *, length: int | None = None, mtime_ms: int | None = None) -> dict[str, Any]:
    """The `getattr` answer for a file or directory.

    `length` and `mtime_ms` override the NameNode's view for a file this mount is writing
    (bytes handed to write() count before the NameNode has them).

    Directories report one link: the true count (2 + subdirectories) is not kept, and
    find(1)/fts treat 1 as "unknown" rather than trusting a wrong number.
    """
    size = status.length if length is None else length
    mtime_ns = (status.mtime if mtime_ms is None else mtime_ms) * NS_PER_MS
    kind = stat.S_IFDIR if status.is_dir else stat.S_IFREG
    return {
        "st_mode": kind | (status.mode & 0o7777),
        "st_ino": status.file_id,
        "st_nlink": 1,
        "st_uid": uid_of(status.owner),
        "st_gid": gid_of(status.group),
        "st_size": size,
        "st_blocks": (size + 511) // 512,
        "st_blksize": PREFERRED_IO_SIZE,
        "st_atime": status.atime * NS_PER_MS,
        "st_mtime": mtime_ns,
        "st_ctime": mtime_ns,
    }
