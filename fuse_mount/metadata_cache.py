"""A short-lived cache of file statuses and directory listings, so `ls -l` of a big
directory costs one listing, not one NameNode call per entry.

Entries live for `ttl` seconds: changes made by other clients show within that time.
The mount's own changes invalidate what they touch at once (the path, its parent's
listing, and for a rename or recursive delete everything under it). The parent's own
status is dropped too, unless the change says what it did to it (`ParentChange`): a
create or unlink sets its mtime and entry count in place (the entry keeps its expiry), and
a write to a child leaves it alone; the kernel asks for the parent's attributes after every
create and unlink (its permission check), and asking the NameNode each time would double
their cost.
Absent paths are cached too (negative entries): programs probe for files that are not
there (`.git`, lock files, shell completion) far more often than one would think.

On a mount shared by several local users (allow_other) each acting user has a cache of
their own (`UserScopedCache`): what the NameNode showed one user (a listing, a status
behind a directory only they may enter) is never served to another; a change
invalidates every user's view.

Statahead (as Lustre's): a program that stats, opens or deletes one name of a directory
after another (`stat *`, `find`, `rm -r`, a loop over files) misses the cache for each.
After a few such misses in a row, of names that exist, one listing page of that directory
(up to `STATAHEAD_PAGE` entries with their full status, starting at the name just asked
for) fills the cache for the names that follow, with the usual TTL. Only names the page
holds are cached; an absent name is never concluded from a page.
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

#: Lookups in a row, in one directory, that missed the cache and found an entry, before
#: statahead reads the directory ahead.
STATAHEAD_AFTER = 4
#: Entries a statahead page asks for (one NameNode call; the NameNode's default page).
STATAHEAD_PAGE = 1000
#: Misses further apart than this are not "in a row".
STATAHEAD_GAP_S = 1.0
#: Directories whose streaks are tracked at once (per user).
STATAHEAD_DIRECTORIES = 64


@dataclass
class _Streak:
    misses: int
    last: float
    name: str = ""  # the name of the last miss
    #: Names [low, high] the last page of this directory covered, and until when that counts.
    covered: tuple[str, str | None, float] | None = None
    in_flight: bool = False


class StataheadPolicy:
    """When to read a directory ahead: after `after` cache misses in a row among its
    children that the NameNode found (a miss that finds nothing, as before every create,
    does not count: a listing would not have helped). A name inside the range the last
    page covered, while that page is fresh, does not count either (it was created since:
    reading the same page again would not hold the names that follow), nor does the same name
    missed twice in a row (a file or directory this mount keeps changing). Pure logic; thread-safe."""

    def __init__(
        self,
        ttl: float,
        clock: Clock = time.monotonic,
        after: int = STATAHEAD_AFTER,
        gap: float = STATAHEAD_GAP_S,
        max_directories: int = STATAHEAD_DIRECTORIES,
    ) -> None:
        self.ttl = ttl
        self.after = after
        self.gap = gap
        self._clock = clock
        self._max_directories = max_directories
        self._lock = threading.Lock()
        self._streaks: dict[str, _Streak] = {}

    def missed(self, path: str) -> bool:
        """`path` missed the cache and exists: True if its directory should be read ahead now,
        from `path` on (the caller then calls `listed` or `abandoned`)."""
        if self.ttl <= 0 or path == paths.ROOT:
            return False
        directory, name = paths.parent(path), paths.basename(path)
        now = self._clock()
        with self._lock:
            streak = self._streaks.get(directory)
            if streak is None:
                if len(self._streaks) >= self._max_directories:
                    del self._streaks[next(iter(self._streaks))]  # insertion order: the oldest
                streak = self._streaks[directory] = _Streak(0, now)
            if streak.covered is not None:
                low, high, until = streak.covered
                if until < now:
                    streak.covered = None
                elif low <= name and (high is None or name <= high):
                    return False  # the fresh page did not hold it: reading it again would not help
            if name == streak.name:
                return False  # the same name again (changed meanwhile): no sign of a sweep
            if now - streak.last > self.gap:
                streak.misses = 0
            streak.misses += 1
            streak.last, streak.name = now, name
            if streak.in_flight or streak.misses < self.after:
                return False
            streak.in_flight = True
            streak.misses = 0
            return True

    def listed(self, directory: str, start_after: str, last: str | None, has_more: bool) -> None:
        """A page of `directory` after `start_after` (a name just fetched) was read; it ends
        at `last` (None: empty). Until the TTL passes, misses in [start_after, last] do not count."""
        now = self._clock()
        with self._lock:
            streak = self._streaks.get(directory)
            if streak is None:
                return
            streak.in_flight = False
            high = (last or start_after) if has_more else None  # None: to the end of the directory
            streak.covered = (start_after, high, now + self.ttl)

    def abandoned(self, directory: str, *, failed: bool = False) -> None:
        """The read-ahead of `directory` was dropped (the cache changed meanwhile) or, with
        `failed`, refused (a directory the user may not list): not tried again within the TTL."""
        with self._lock:
            streak = self._streaks.get(directory)
            if streak is not None:
                streak.in_flight = False
                if failed:
                    streak.covered = ("", None, self._clock() + self.ttl)


@dataclass(frozen=True)
class ParentChange:
    """What a change of one entry did to its parent directory's own status."""

    #: Its new mtime (ms); None: unchanged (the child's bytes or attributes changed, not the entry).
    mtime: int | None
    #: Entries added (negative: removed).
    entries: int = 0


#: The child's content changed (a write, a sync): the directory itself did not.
CONTENT_ONLY = ParentChange(None)


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
        self._generation = 0
        self.statahead = StataheadPolicy(ttl, clock)

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

    def generation(self) -> int:
        """Bumped by every invalidation: a page read across one may hold what was just changed."""
        with self._lock:
            return self._generation

    def remember_page(self, entries: list[FileStatus], generation: int) -> bool:
        """Keep the statuses of a statahead page, unless the cache was invalidated since
        `generation` (while the page was being read). True if kept."""
        if self.ttl <= 0:
            return False
        with self._lock:
            if generation != self._generation:
                return False
            self._make_room()
            expires = self._clock() + self.ttl
            for entry in entries:
                self._statuses[entry.path] = _Entry(entry, expires)
            return True

    # --- invalidation ------------------------------------------------------------------------

    def invalidate(self, path: str, *, subtree: bool = False, parent: ParentChange | None = None) -> None:
        """Forget `path` and its parent's listing (and, with `subtree`, everything under it).
        The parent's status is forgotten too, or with `parent` updated as it says."""
        with self._lock:
            self._generation += 1
            self._statuses.pop(path, None)
            self._listings.pop(path, None)
            if path != paths.ROOT:
                directory = paths.parent(path)
                self._listings.pop(directory, None)
                if parent is None:
                    self._statuses.pop(directory, None)  # its mtime and child count changed
                else:
                    self._update_parent(directory, parent)
            if subtree:
                prefix = path.rstrip("/") + "/"
                for key in [key for key in self._statuses if key.startswith(prefix)]:
                    del self._statuses[key]
                for key in [key for key in self._listings if key.startswith(prefix)]:
                    del self._listings[key]

    def _update_parent(self, directory: str, change: ParentChange) -> None:
        # Caller holds the lock. The entry keeps its expiry: the NameNode's own view within the TTL.
        entry = self._statuses.get(directory)
        if entry is None or (change.mtime is None and not change.entries):
            return
        status = entry.status
        if status is None or not status.is_dir:
            del self._statuses[directory]
            return
        mtime = status.mtime if change.mtime is None else max(status.mtime, change.mtime)
        children = max(0, status.children + change.entries)
        entry.status = status.model_copy(update={"mtime": mtime, "children": children})

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
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

    def mine(self) -> MetadataCache:
        """The current user's cache (for statahead: its policy, its generation)."""
        return self._mine()

    def invalidate(self, path: str, *, subtree: bool = False, parent: ParentChange | None = None) -> None:
        for cache in self._all():
            cache.invalidate(path, subtree=subtree, parent=parent)

    def clear(self) -> None:
        for cache in self._all():
            cache.clear()
