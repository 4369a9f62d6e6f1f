"""A randomised soak test's parts: the model of acknowledged state, the workload, the checker.

The model records every operation whose call returned (acknowledged). A call that raised is
*ambiguous*: the file system may or may not have applied it. Its paths stay reserved until the
checker has looked and found one of the outcomes the guarantees allow (docs/guarantees.md):

- a failed write: nothing (a new file), the old bytes (an overwrite), or the new bytes cut to
  whole finished blocks (lease recovery keeps every finalised block and drops the unfinished tail);
- a failed rename: everything still at the source, or everything at the destination;
- a failed delete or mkdir: done, or not done.

Anything else (wrong bytes, a lost acknowledged file, a resurrected delete) is a violation. File
contents are derived from (seed, version) with SHAKE-256, whose output for a longer length starts
with the output for a shorter one, so the model keeps (version, length) and never the bytes.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from client.protocol.client_namenode import FileStatus
from client.protocol.errors import DfsFileNotFoundError, DfsTimeoutError
from client.sync_client import DFSClient

#: How long a worker keeps looking at the outcome of its failed call before leaving it to the
#: next checkpoint (which heals the cluster first).
SETTLE_S = 40.0
#: Files beyond this make writers delete instead (bounds the data a checkpoint reads back).
MAX_FILES = 48
MAX_DEPTH = 3


@dataclass(frozen=True)
class Version:
    """What a file holds: the first `length` bytes of the stream of version `name`."""

    name: str
    length: int


def content(seed: int, version: Version) -> bytes:
    return hashlib.shake_256(f"{seed}/{version.name}".encode()).digest(version.length)


def recovered_lengths(length: int, block_size: int) -> list[int]:
    """Lengths a failed write of `length` bytes may leave: whole finished blocks, or everything."""
    return sorted({*range(0, length, block_size), length})


@dataclass
class Ambiguity:
    """A call that raised: what it tried, on which (reserved) paths."""

    kind: str  # write, rename, delete, mkdir
    path: str
    reserved: tuple[str, ...]
    dst: str = ""
    old: Version | None = None  # write: the file it replaced; rename: the file at dst
    new: Version | None = None
    error: str = ""


@dataclass
class Stats:
    acknowledged: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # exception types of failed calls
    outcomes: Counter[str] = field(default_factory=Counter)  # how ambiguities resolved
    faults: Counter[str] = field(default_factory=Counter)
    checkpoints: int = 0
    files_verified: int = 0
    bytes_verified: int = 0


class Model:
    """The acknowledged namespace under `root`, reservations, and the violations found."""

    def __init__(self, root: str, seed: int, block_size: int) -> None:
        self.root = root
        self.seed = seed
        self.block_size = block_size
        self.lock = threading.Lock()
        self.files: dict[str, Version] = {}
        self.dirs: set[str] = {root}
        self.busy: set[str] = set()
        self.pending: list[Ambiguity] = []
        self.violations: list[str] = []
        self.stats = Stats()

    def expected(self, version: Version) -> bytes:
        return content(self.seed, version)

    def violation(self, text: str) -> None:
        with self.lock:
            self.record_violation(text)

    def record_violation(self, text: str) -> None:
        """`violation` for a caller holding the lock."""
        self.violations.append(text)
        print(f"CHAOS VIOLATION: {text}", flush=True)

    # --- reservations (callers hold the lock) -----------------------------------------------

    def free(self, path: str) -> bool:
        """No operation in flight touches `path`, an ancestor or a descendant of it."""
        return not any(b == path or b.startswith(path + "/") or path.startswith(b + "/") for b in self.busy)

    def settled(self, path: str) -> bool:
        """No operation in flight on `path` or an ancestor of it."""
        return not any(b == path or path.startswith(b + "/") for b in self.busy)

    def reserve(self, *paths: str) -> bool:
        if not all(self.free(p) for p in paths):
            return False
        self.busy.update(paths)
        return True

    def release(self, *paths: str) -> None:
        with self.lock:
            self.busy.difference_update(paths)

    # --- changes (callers hold the lock) ------------------------------------------------------

    def move(self, src: str, dst: str) -> None:
        """Apply a rename of a file or a directory tree."""
        self.drop(dst)

        def moved(path: str) -> str:
            return dst + path[len(src) :] if path == src or path.startswith(src + "/") else path

        self.files = {moved(p): v for p, v in self.files.items()}
        self.dirs = {moved(d) for d in self.dirs}

    def drop(self, path: str) -> None:
        """Apply a delete of a file or a directory tree."""
        self.files = {p: v for p, v in self.files.items() if p != path and not p.startswith(path + "/")}
        self.dirs = {d for d in self.dirs if d != path and not d.startswith(path + "/")}


# --- the checker ----------------------------------------------------------------------------


def stat(fs: DFSClient, path: str) -> FileStatus | None:
    try:
        return fs.status(path)
    except DfsFileNotFoundError:
        return None


def resolve(fs: DFSClient, model: Model, amb: Ambiguity) -> bool:
    """Look at what a failed call left; record it in the model (a violation if not allowed).

    False: cannot tell yet (a file still under construction). Raises while the cluster cannot answer."""
    if amb.kind == "write":
        return _resolve_write(fs, model, amb)
    if amb.kind == "rename":
        src_there, dst_there = stat(fs, amb.path) is not None, stat(fs, amb.dst) is not None
        with model.lock:
            if src_there and dst_there == (amb.old is not None):
                model.stats.outcomes["rename: not applied"] += 1
            elif not src_there and dst_there:
                model.stats.outcomes["rename: applied"] += 1
                model.move(amb.path, amb.dst)
            else:
                model.record_violation(
                    f"failed rename {amb.path} -> {amb.dst}: source there={src_there}, destination there="
                    f"{dst_there} (destination existed before: {amb.old is not None})"
                )
        return True
    there = stat(fs, amb.path)
    with model.lock:
        if amb.kind == "delete":
            model.stats.outcomes[f"delete: {'not applied' if there else 'applied'}"] += 1
            if there is None:
                model.drop(amb.path)
        elif there is not None and not there.is_dir:
            model.record_violation(f"failed mkdir {amb.path} left a file there")
        else:
            model.stats.outcomes[f"mkdir: {'applied' if there else 'not applied'}"] += 1
            if there is not None:
                model.dirs.add(amb.path)
    return True


def _resolve_write(fs: DFSClient, model: Model, amb: Ambiguity) -> bool:
    assert amb.new is not None
    status = stat(fs, amb.path)
    if status is not None and status.under_construction:
        return False  # lease recovery (the writer's abort, or the hard limit) will close it
    data = None if status is None or status.is_dir else fs.read_bytes(amb.path)
    allowed = [amb.old] if amb.old is not None else []
    allowed += [Version(amb.new.name, n) for n in recovered_lengths(amb.new.length, model.block_size)]
    with model.lock:
        if data is None and amb.old is None and status is None:
            model.stats.outcomes["write: nothing"] += 1
            return True
        for version in allowed:
            if data is not None and len(data) == version.length and data == model.expected(version):
                label = "old bytes" if version == amb.old else "all" if version == amb.new else "block prefix"
                model.stats.outcomes[f"write: {label}"] += 1
                model.files[amb.path] = version
                return True
        found = "nothing" if status is None else "a directory" if data is None else f"{len(data)} bytes"
        model.record_violation(
            f"failed write of {amb.path} ({amb.new.length} new bytes, old {amb.old}) left {found} "
            f"(status length {status.length if status else None}), none of the allowed outcomes"
        )
        model.drop(amb.path)
    return True


def verify_namespace(fs: DFSClient, model: Model) -> None:
    """The whole tree under the root matches the model byte for byte (the workload is paused)."""
    seen_dirs: set[str] = {model.root}
    seen_files: dict[str, FileStatus] = {}
    for entry in fs.walk(model.root):
        if entry.is_dir:
            seen_dirs.add(entry.path)
        else:
            seen_files[entry.path] = entry
    if seen_dirs != model.dirs:
        model.violation(
            f"directories differ: missing {sorted(model.dirs - seen_dirs)}, extra {sorted(seen_dirs - model.dirs)}"
        )
    if set(seen_files) != set(model.files):
        model.violation(
            f"files differ: missing {sorted(set(model.files) - set(seen_files))}, "
            f"extra {sorted(set(seen_files) - set(model.files))}"
        )
    for path, version in sorted(model.files.items()):
        found = seen_files.get(path)
        if found is None:
            continue
        entry = found
        if entry.length != version.length or entry.under_construction:
            model.violation(
                f"{path}: status says {entry.length} bytes (open: {entry.under_construction}), "
                f"acknowledged {version.length}"
            )
        data = read_with_retries(fs, path, model)
        if data is not None and data != model.expected(version):
            model.violation(f"{path}: read {len(data)} bytes that are not the acknowledged {version}")
        model.stats.files_verified += 1
        model.stats.bytes_verified += version.length


def read_with_retries(fs: DFSClient, path: str, model: Model, attempts: int = 3) -> bytes | None:
    """A healed cluster must serve every acknowledged file; a restarted node may need a moment."""
    for attempt in range(attempts):
        try:
            return fs.read_bytes(path)
        except Exception as exc:
            if attempt == attempts - 1:
                model.violation(f"{path}: unreadable on a healed cluster: {type(exc).__name__}: {exc}")
            time.sleep(1.0)
    return None


# --- the workload ----------------------------------------------------------------------------


class Gate:
    """Lets the checker stop the workload between operations (a checkpoint)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._active = 0
        self.in_flight: dict[str, tuple[str, float]] = {}  # thread name -> (operation, start)

    @contextmanager
    def operation(self, stop: threading.Event) -> Iterator[bool]:
        with self._cond:
            while self._paused and not stop.is_set():
                self._cond.wait(0.2)
            self._active += 1
        try:
            yield not stop.is_set()
        finally:
            with self._cond:
                self._active -= 1
                self.in_flight.pop(threading.current_thread().name, None)
                self._cond.notify_all()

    def pause(self, timeout: float) -> bool:
        """Stop new operations and wait for those in flight; False if they do not end in time (a hang)."""
        with self._cond:
            self._paused = True
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()


#: Operation weights per worker role.
ROLES: dict[str, dict[str, int]] = {
    "writer": {"write": 6, "overwrite": 3, "read": 1, "delete": 1},
    "reader": {"read": 8, "write": 1},
    "mover": {"rename": 4, "rename_over": 1, "rename_dir": 2, "delete": 1, "delete_dir": 1, "mkdir": 1, "read": 2},
    "mixed": {"write": 3, "overwrite": 1, "read": 3, "rename": 2, "delete": 1, "mkdir": 1, "rename_dir": 1},
}


class Worker(threading.Thread):
    """One client doing random operations from its role's mix, with its own seeded RNG."""

    def __init__(
        self,
        index: int,
        role: str,
        model: Model,
        make_client: Callable[[], DFSClient],
        gate: Gate,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"chaos-{role}-{index}", daemon=True)
        self.index, self.role, self.model, self.gate, self.stop = index, role, model, gate, stop
        self.make_client = make_client
        self.rng = random.Random(f"{model.seed}/worker/{index}")
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.index}_{self.counter}"

    def run(self) -> None:
        try:
            with self.make_client() as fs:
                while not self.stop.is_set():
                    with self.gate.operation(self.stop) as go:
                        if go:
                            self.step(fs)
        except BaseException:
            self.model.violation(f"{self.name} crashed:\n{traceback.format_exc()}")

    def step(self, fs: DFSClient) -> None:
        kinds = ROLES[self.role]
        kind = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind == "write" and len(self.model.files) >= MAX_FILES:
            kind = "delete"
        self.gate.in_flight[self.name] = (kind, time.monotonic())
        getattr(self, f"op_{kind}")(fs)
        if kind not in ("write", "overwrite", "read"):
            self.stop.wait(self.rng.uniform(0, 0.1))  # metadata calls are cheap: leave the NameNode time

    # --- choosing targets ---------------------------------------------------------------------

    def pick(self, candidates: list[str], *, inside: bool = False) -> str | None:
        """A random free candidate (caller holds the lock); `inside`: a directory to create in,
        which only needs no operation on it or an ancestor."""
        check = self.model.settled if inside else self.model.free
        free = [c for c in candidates if check(c)]
        return self.rng.choice(sorted(free)) if free else None

    def depth(self, path: str) -> int:
        return path[len(self.model.root) :].count("/")

    def new_version(self) -> Version:
        block = self.model.block_size
        length = self.rng.choice(
            [
                0,
                self.rng.randrange(1, 4096),
                self.rng.randrange(block),
                block,
                2 * block,
                self.rng.randrange(3 * block + 1),
            ]
        )
        return Version(self.fresh("v"), length)

    # --- running a call and recording what came of it ------------------------------------------

    def attempt(
        self, fs: DFSClient, kind: str, call: Callable[[], object], amb: Ambiguity, apply: Callable[[], None]
    ) -> None:
        """Run a changing call: acknowledged -> apply to the model; raised -> settle the ambiguity."""
        try:
            call()
        except Exception as exc:
            with self.model.lock:
                self.model.stats.failed[kind] += 1
                self.model.stats.errors[f"{kind}: {type(exc).__name__}"] += 1
            amb.error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, DfsTimeoutError):
                # The NameNode may still be applying it: look only at the checkpoint, once it is quiet.
                with self.model.lock:
                    self.model.pending.append(amb)
            else:
                self.settle(fs, amb)
            return
        with self.model.lock:
            self.model.stats.acknowledged[kind] += 1
            apply()
        self.model.release(*amb.reserved)

    def settle(self, fs: DFSClient, amb: Ambiguity) -> None:
        """Look until the outcome is clear; left to the next checkpoint if it is not within SETTLE_S."""
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                if resolve(fs, self.model, amb):
                    self.model.release(*amb.reserved)
                    return
            except Exception:
                pass  # the cluster cannot answer yet
            self.stop.wait(0.5)
        with self.model.lock:
            self.model.pending.append(amb)

    # --- operations -------------------------------------------------------------------------------

    def op_write(self, fs: DFSClient) -> None:
        with self.model.lock:
            parent = self.pick(sorted(self.model.dirs), inside=True)
            path = f"{parent}/{self.fresh('f')}"
            if parent is None or not self.model.reserve(path):
                return
        self._write(fs, path, None)

    def op_overwrite(self, fs: DFSClient) -> None:
        with self.model.lock:
            path = self.pick(list(self.model.files))
            if path is None or not self.model.reserve(path):
                return
            old = self.model.files[path]
        self._write(fs, path, old)

    def _write(self, fs: DFSClient, path: str, old: Version | None) -> None:
        new = self.new_version()
        data = self.model.expected(new)

        def call() -> object:
            return fs.write_bytes(path, data, overwrite=old is not None, block_size=self.model.block_size)

        def apply() -> None:
            self.model.files[path] = new

        kind = "overwrite" if old else "write"
        self.attempt(fs, kind, call, Ambiguity("write", path, (path,), old=old, new=new), apply)

    def op_read(self, fs: DFSClient) -> None:
        with self.model.lock:
            path = self.pick(list(self.model.files))
            if path is None or not self.model.reserve(path):
                return
            version = self.model.files[path]
        try:
            data = fs.read_bytes(path)
        except Exception as exc:
            with self.model.lock:
                self.model.stats.failed["read"] += 1
                self.model.stats.errors[f"read: {type(exc).__name__}"] += 1
        else:
            if data != self.model.expected(version):
                self.model.violation(f"read {path}: {len(data)} bytes that are not the acknowledged {version}")
            with self.model.lock:
                self.model.stats.acknowledged["read"] += 1
        self.model.release(path)

    def op_rename(self, fs: DFSClient) -> None:
        with self.model.lock:
            src, parent = self.pick(list(self.model.files)), self.pick(sorted(self.model.dirs), inside=True)
            dst = f"{parent}/{self.fresh('f')}"
            if src is None or parent is None or not self.model.reserve(src, dst):
                return
        self._rename(fs, src, dst, None)

    def op_rename_over(self, fs: DFSClient) -> None:
        """Rename a file onto another one (overwrite): the destination's old file goes."""
        with self.model.lock:
            src = self.pick(list(self.model.files))
            dst = self.pick([p for p in self.model.files if p != src])
            if src is None or dst is None or not self.model.reserve(src, dst):
                return
            old = self.model.files[dst]
        self._rename(fs, src, dst, old)

    def op_rename_dir(self, fs: DFSClient) -> None:
        with self.model.lock:
            src = self.pick([d for d in self.model.dirs if d != self.model.root])
            if src is None:
                return
            height = max(self.depth(d) for d in self.model.dirs if d == src or d.startswith(src + "/")) - self.depth(
                src
            )
            parents = [
                d
                for d in self.model.dirs
                if d != src and not d.startswith(src + "/") and self.depth(d) + 1 + height <= MAX_DEPTH
            ]
            parent = self.pick(parents, inside=True)
            dst = f"{parent}/{self.fresh('d')}"
            if parent is None or not self.model.reserve(src, dst):
                return
        self._rename(fs, src, dst, None)

    def _rename(self, fs: DFSClient, src: str, dst: str, old: Version | None) -> None:
        def apply() -> None:
            self.model.move(src, dst)

        call = lambda: fs.rename(src, dst, overwrite=old is not None)  # noqa: E731
        self.attempt(fs, "rename", call, Ambiguity("rename", src, (src, dst), dst=dst, old=old), apply)

    def op_delete(self, fs: DFSClient) -> None:
        with self.model.lock:
            path = self.pick(list(self.model.files))
            if path is None or not self.model.reserve(path):
                return
        self._remove(fs, path, "delete")

    def op_delete_dir(self, fs: DFSClient) -> None:
        with self.model.lock:
            small = [d for d in self.model.dirs if sum(p.startswith(d + "/") for p in self.model.files) <= 2]
            path = self.pick([d for d in small if d != self.model.root]) if len(self.model.dirs) > 8 else None
            if path is None or not self.model.reserve(path):
                return
        self._remove(fs, path, "delete_dir")

    def _remove(self, fs: DFSClient, path: str, kind: str) -> None:
        def apply() -> None:
            self.model.drop(path)

        self.attempt(fs, kind, lambda: fs.delete(path, recursive=True), Ambiguity("delete", path, (path,)), apply)

    def op_mkdir(self, fs: DFSClient) -> None:
        with self.model.lock:
            parent = self.pick([d for d in self.model.dirs if self.depth(d) < MAX_DEPTH], inside=True)
            path = f"{parent}/{self.fresh('d')}"
            if parent is None or len(self.model.dirs) > 16 or not self.model.reserve(path):
                return

        def apply() -> None:
            self.model.dirs.add(path)

        self.attempt(fs, "mkdir", lambda: fs.mkdirs(path), Ambiguity("mkdir", path, (path,)), apply)


def thread_stacks(prefix: str = "chaos-") -> str:
    """Where every workload thread is (for a hang report)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return "\n".join(
        f"--- {names.get(ident)}\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in sys._current_frames().items()
        if str(names.get(ident, "")).startswith(prefix)
    )
