"""Authorisation: HDFS's FSPermissionChecker over inode rows, and who belongs to which group.

Pure logic: the namespace fetches the inodes (a path's chain, a subtree's directories) and
asks a `PermissionChecker` built for the caller whether the operation may go ahead; a refusal
is `DfsPermissionError` with Hadoop's message, e.g.
``Permission denied: user=bob, access=WRITE, inode="/dir":alice:supergroup:drwxr-xr-x``.

The rules are Hadoop's: traversal needs x on every ancestor directory; an operation then needs
an access on the deepest existing ancestor, the parent, the inode itself and/or every directory
of its subtree; a parent with the sticky bit lets only the entry's owner, the directory's owner
or the superuser remove or rename its entries; the superuser bypasses every check.
"""

from __future__ import annotations

import grp
import pwd
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Protocol

from client.protocol import paths
from client.protocol.errors import DfsNotADirectoryError, DfsPermissionError

STICKY_BIT = 0o1000
#: How long a user's OS groups are remembered (Hadoop's hadoop.security.groups.cache.secs).
GROUPS_CACHE_S = 300.0


class FsAction(Enum):
    """Hadoop's FsAction: the names appear in refusals (``access=READ_EXECUTE``)."""

    NONE = 0
    EXECUTE = 1
    WRITE = 2
    WRITE_EXECUTE = 3
    READ = 4
    READ_EXECUTE = 5
    READ_WRITE = 6
    ALL = 7

    def implies(self, other: FsAction) -> bool:
        return self.value & other.value == other.value

    @classmethod
    def from_symbolic(cls, text: str) -> FsAction:
        """``r-x`` (WebHDFS's fsaction) as an FsAction."""
        return cls(sum(bit for flag, bit in zip(text, (4, 2, 1), strict=True) if flag != "-"))


class InodeAttrs(Protocol):
    """What the checker reads of an inode (namenode.db.models.Inode has it)."""

    @property
    def owner(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def mode(self) -> int: ...
    @property
    def is_dir(self) -> bool: ...


class SubtreeDirectory(NamedTuple):
    """One directory of a subtree, as the subtree query returns it."""

    path: str
    owner: str
    group: str
    mode: int
    has_children: bool
    is_dir: bool = True


@dataclass(frozen=True)
class Caller:
    """Who is asking: the authenticated user, the groups they are in, and whether they are the superuser."""

    user: str
    groups: frozenset[str] = frozenset()
    is_superuser: bool = False


def mode_string(mode: int, is_dir: bool) -> str:
    """``drwxr-xr-x`` as Hadoop prints an inode (``t``/``T`` for the sticky bit, no setuid/setgid)."""
    return stat.filemode((stat.S_IFDIR if is_dir else stat.S_IFREG) | (mode & 0o1777))


def describe(inode: InodeAttrs, path: str) -> str:
    return f'"{path}":{inode.owner}:{inode.group}:{mode_string(inode.mode, inode.is_dir)}'


class PermissionChecker:
    """HDFS's FSPermissionChecker for one caller; `enabled=False` (dfs.permissions.enabled) allows all."""

    def __init__(self, caller: Caller, *, enabled: bool = True) -> None:
        self.caller = caller
        self.bypass = caller.is_superuser or not enabled

    @property
    def user(self) -> str:
        return self.caller.user

    def check_path(
        self,
        path: str,
        chain: Sequence[InodeAttrs],
        *,
        ancestor: FsAction | None = None,
        parent: FsAction | None = None,
        access: FsAction | None = None,
        owner: bool = False,
    ) -> None:
        """Hadoop's checkPermission: `chain` is the existing prefix of `path` (root first, possibly
        ending early where the path stops existing). Traversal is always checked; `ancestor` on
        the deepest existing ancestor, `parent` on the parent (with the sticky-bit rule when it
        implies WRITE), `access` and `owner` on the inode itself, each only where it exists."""
        if self.bypass:
            return
        names = paths.split(path)
        length = len(names) + 1  # inodes a complete chain has, the root included
        last_exists = len(chain) == length

        def path_at(index: int) -> str:
            return "/" + "/".join(names[:index])

        ancestor_index = min(len(chain), length - 1) - 1  # deepest existing inode above the last
        for index in range(ancestor_index + 1):
            if not chain[index].is_dir:
                raise DfsNotADirectoryError(f"{path_at(index)} is not a directory", path=path)
            self.check_access(chain[index], path_at(index), FsAction.EXECUTE)
        if length < 2:
            parent = ancestor = None  # the root has neither
        if parent is not None and parent.implies(FsAction.WRITE) and last_exists:
            self.check_sticky(chain[-2], path_at(length - 2), chain[-1], path)
        if ancestor is not None:
            self.check_access(chain[ancestor_index], path_at(ancestor_index), ancestor)
        if parent is not None and len(chain) >= length - 1:
            self.check_access(chain[length - 2], path_at(length - 2), parent)
        if access is not None and last_exists:
            self.check_access(chain[-1], path, access)
        if owner and last_exists:
            self.check_owner(chain[-1], path)

    def check_access(self, inode: InodeAttrs, path: str, access: FsAction) -> None:
        """The owner's, else the group's, else others' bits must grant `access` (no fall-through)."""
        if self.bypass or self.allows(inode, access):
            return
        raise DfsPermissionError(
            f"Permission denied: user={self.user}, access={access.name}, inode={describe(inode, path)}", path=path
        )

    def allows(self, inode: InodeAttrs, access: FsAction) -> bool:
        if self.bypass:
            return True
        if self.user == inode.owner:
            granted = inode.mode >> 6
        elif inode.group in self.caller.groups:
            granted = inode.mode >> 3
        else:
            granted = inode.mode
        return FsAction(granted & 0o7).implies(access)

    def check_sticky(self, parent: InodeAttrs, parent_path: str, inode: InodeAttrs, path: str) -> None:
        """In a sticky directory (like /tmp) only the entry's or the directory's owner may remove it."""
        if self.bypass or not parent.mode & STICKY_BIT or self.user in (parent.owner, inode.owner):
            return
        raise DfsPermissionError(
            f"Permission denied by sticky bit: user={self.user}, path={describe(inode, path)}, "
            f"parent={describe(parent, parent_path)}",
            path=path,
        )

    def check_owner(self, inode: InodeAttrs, path: str) -> None:
        if self.bypass or self.user == inode.owner:
            return
        raise DfsPermissionError(f"Permission denied. user={self.user} is not the owner of inode={path}", path=path)

    def check_subtree(self, directories: Iterable[SubtreeDirectory], access: FsAction, *, ignore_empty: bool) -> None:
        """`access` on every directory of a subtree (recursive delete, content summary); with
        `ignore_empty`, empty directories need nothing (removing them takes only the parent's w)."""
        if self.bypass:
            return
        for directory in directories:
            if not (ignore_empty and not directory.has_children):
                self.check_access(directory, directory.path, access)

    def check_set_owner(self, inode: InodeAttrs, path: str, owner: str | None, group: str | None) -> None:
        """chown/chgrp: the owner may give the file to a group they are in; only the superuser
        may give it to someone else (HDFS's setOwner)."""
        if self.bypass:
            return
        self.check_owner(inode, path)
        if owner is not None and owner != self.user:
            raise DfsPermissionError(
                f"User {self.user} is not a super user (non-super user cannot change owner)", path=path
            )
        if group is not None and group not in self.caller.groups:
            raise DfsPermissionError(f"User {self.user} does not belong to {group}", path=path)

    def check_set_times(self, inode: InodeAttrs, path: str) -> None:
        """utimes: the owner, or anyone who may write the file (HDFS's setTimes needs WRITE)."""
        if self.bypass or self.user == inode.owner:
            return
        self.check_access(inode, path, FsAction.WRITE)

    def check_superuser(self) -> None:
        """Administration (safe mode, decommissioning, balancer, fsck) is the superuser's (when checking is on)."""
        if not self.bypass:
            raise DfsPermissionError(f"Access denied for user {self.user}. Superuser privilege is required")


# --- groups -------------------------------------------------------------------------------------


def parse_static_mapping(spec: str) -> dict[str, frozenset[str]]:
    """``alice=eng,ops;bob=eng`` (Hadoop's hadoop.user.group.static.mapping.overrides; ``bob=``
    gives bob no groups). ValueError on a malformed entry."""
    mapping: dict[str, frozenset[str]] = {}
    for entry in spec.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        user, sep, groups = entry.partition("=")
        user = user.strip()
        if not sep or not user:
            raise ValueError(f"user_groups entry {entry!r} is not USER=GROUP[,GROUP...]")
        mapping[user] = frozenset(group.strip() for group in groups.split(",") if group.strip())
    return mapping


def os_groups(user: str) -> frozenset[str]:
    """The user's groups on this host (primary and supplementary); none for an unknown user."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return frozenset()
    names = {entry.gr_name for entry in grp.getgrall() if user in entry.gr_mem}
    try:
        names.add(grp.getgrgid(account.pw_gid).gr_name)
    except KeyError:
        pass
    return frozenset(names)


class GroupMapping:
    """Groups of a user: the static mapping wins, else the NameNode host's OS groups (cached)."""

    def __init__(
        self,
        static: Mapping[str, frozenset[str]],
        *,
        lookup: Callable[[str], frozenset[str]] = os_groups,
        cache_s: float = GROUPS_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.static = dict(static)
        self.lookup = lookup
        self.cache_s = cache_s
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()  # read-pool threads and the event loop both ask

    def groups(self, user: str) -> frozenset[str]:
        if user in self.static:
            return self.static[user]
        now = self.clock()
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        found = self.lookup(user)
        with self._lock:
            self._cache[user] = (now, found)
        return found


class Permissions:
    """The NameNode's authorisation policy: who is the superuser, which groups a user is in."""

    def __init__(self, *, superuser: str, supergroup: str, groups: GroupMapping, enabled: bool = True) -> None:
        self.superuser = superuser
        self.supergroup = supergroup
        self.group_mapping = groups
        self.enabled = enabled

    def caller(self, user: str) -> Caller:
        groups = self.group_mapping.groups(user)
        return Caller(user, groups, user == self.superuser or self.supergroup in groups)

    def checker(self, user: str) -> PermissionChecker:
        return PermissionChecker(self.caller(user), enabled=self.enabled)

    def is_superuser(self, user: str) -> bool:
        return self.caller(user).is_superuser
