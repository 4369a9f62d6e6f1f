"""A short-lived cache of file statuses and directory listings, so `ls -l` of a big
directory costs one listing, not one NameNode call per entry.

Entries live for `ttl` seconds: changes made by other clients show within that time.
The mount's own changes invalidate what they touch at once (the path, its parent's
listing, and for a rename or recursive delete everything under it).
Absent paths are cached too (negative entries): programs probe for files that are not
there (`.git`, lock files, shell completion) far more often than one would think.

On a mount shared by several local users (allow_other) each acting user has a cache of
their own (`UserScopedCache`): what the NameNode showed one user (a listing, a status
behind a directory only they may enter) is never served to another; a change
invalidates every user's view.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from client import FileStatus
from client.identity import acting_user
from client.protocol import paths

Clock = Callable[[], float]


@dataclass
class _Entry:
    status: FileStatus | None  # None: the path does not exist
    expires: float


@dataclass
class _Listing:
    entries: list[FileStatus]
    expires: float


class MetadataCache:
    """Thread-safe TTL cache: path -> status (or absence), directory -> its entries."""

    def __init__(self, ttl: float, clock: Clock = time.monotonic, max_entries: int = 200_000) -> None:
        self.ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._statuses: dict[str, _Entry] = {}
        self._listings: dict[str, _Listing] = {}

    # --- statuses ----------------------------------------------------------------------------

    def lookup(self, path: str) -> tuple[bool, FileStatus | None]:
        """(found, status): found is False on a miss; a hit may say the path is absent (None)."""
        if self.ttl <= 0:
            return False, None
        with self._lock:
            entry = self._statuses.get(path)
            if entry is None:
                return False, None
            if entry.expires < self._clock():
                del self._statuses[path]
                return False, None
            return True, entry.status

    def remember(self, path: str, status: FileStatus | None) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._make_room()
            self._statuses[path] = _Entry(status, self._clock() + self.ttl)

    # --- listings ----------------------------------------------------------------------------

    def listing(self, directory: str) -> list[FileStatus] | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            listing = self._listings.get(directory)
            if listing is None:
                return None
            if listing.expires < self._clock():
                del self._listings[directory]
                return None
            return listing.entries

    def remember_listing(self, directory: str, entries: list[FileStatus]) -> None:
        """Keep a directory's entries and the status of each (what `ls -l` asks for next)."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._make_room()
            expires = self._clock() + self.ttl
            for entry in entries:
                self._statuses[entry.path] = _Entry(entry, expires)
            self._listings[directory] = _Listing(entries, expires)

    # --- invalidation ------------------------------------------------------------------------

    def invalidate(self, path: str, *, subtree: bool = False) -> None:
        """Forget `path` and its parent's listing (and, with `subtree`, everything under it)."""
        with self._lock:
            self._statuses.pop(path, None)
            self._listings.pop(path, None)
            if path != paths.ROOT:
                parent = paths.parent(path)
                self._listings.pop(parent, None)
                self._statuses.pop(parent, None)  # its mtime and child count changed
            if subtree:
                prefix = path.rstrip("/") + "/"
                for key in [key for key in self._statuses if key.startswith(prefix)]:
                    del self._statuses[key]
                for key in [key for key in self._listings if key.startswith(prefix)]:
                    del self._listings[key]

    def clear(self) -> None:
        with self._lock:
            self._statuses.clear()
            self._listings.clear()

    def _make_room(self) -> None:
        # Caller holds the lock. A full cache starts over: cheaper than LRU bookkeeping on every
        # hit, and a TTL cache this size is only full while something walks a huge tree.
        if len(self._statuses) >= self._max_entries:
            self._statuses.clear()
            self._listings.clear()


class UserScopedCache:
    """One `MetadataCache` per acting user (client.identity), with the same methods.

    Lookups use the current user's cache; invalidation reaches every user's, since a change
    made by one is seen by all. Beyond `max_users` the oldest user's cache is dropped."""

    def __init__(self, ttl: float, clock: Clock = time.monotonic, max_users: int = 16) -> None:
        self.ttl = ttl
        self._clock = clock
        self._max_users = max_users
        self._lock = threading.Lock()
        self._caches: dict[str | None, MetadataCache] = {}

    def _mine(self) -> MetadataCache:
        user = acting_user()
        with self._lock:
            cache = self._caches.get(user)
            if cache is None:
                if len(self._caches) >= self._max_users:
                    del self._caches[next(iter(self._caches))]  # insertion order: the oldest
                cache = self._caches[user] = MetadataCache(self.ttl, self._clock)
            return cache

    def _all(self) -> list[MetadataCache]:
        with self._lock:
            return list(self._caches.values())

    def lookup(self, path: str) -> tuple[bool, FileStatus | None]:
        return self._mine().lookup(path)

    def remember(self, path: str, status: FileStatus | None) -> None:
        self._mine().remember(path, status)

    def listing(self, directory: str) -> list[FileStatus] | None:
        return self._mine().listing(directory)

    def remember_listing(self, directory: str, entries: list[FileStatus]) -> None:
        self._mine().remember_listing(directory, entries)

    def invalidate(self, path: str, *, subtree: bool = False) -> None:
        for cache in self._all():
            cache.invalidate(path, subtree=subtree)

    def clear(self) -> None:
        for cache in self._all():
            cache.clear()
