"""Mounting and unmounting: checks with clear errors, libfuse3 options, and the ctypes seams
mfusepy leaves out (rename flags, UTIME_OMIT, ftruncate's handle).

We mount with mfusepy on libfuse3 (decision 0011): 1 MiB writes and reads per request
instead of libfuse2's 128 KiB, and utimens that can set only one of the two times.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
#: Kernel readahead for the mount's backing device, KiB: sequential reads reach us in 1 MiB
#: requests with several in flight, instead of 128 KiB ones.
DEFAULT_READAHEAD_KIB = 4096


class MountError(Exception):
    """Mounting or unmounting cannot go ahead; the message says why, for a person."""


@dataclass
class MountOptions:
    namenode: str | None = None
    user: str | None = None
    #: A user token (token mode); None: $DFS_TOKEN / $DFS_TOKEN_FILE.
    token: str | None = None
    #: CA bundle for an https cluster; None: $DFS_CA_FILE, else the system trust store.
    ca_file: Path | None = None
    read_only: bool = False
    allow_other: bool = False
    cache_ttl: float = 1.0
    spool_dir: Path | None = None
    readahead_kib: int = DEFAULT_READAHEAD_KIB
    retry_wait: float = 30.0
    debug: bool = False


def mount_device(mountpoint: Path) -> str | None:
    """The 'major:minor' of what is mounted exactly at `mountpoint`, or None."""
    target = str(mountpoint.resolve())
    with contextlib.suppress(OSError), Path("/proc/self/mountinfo").open() as table:
        for line in table:
            fields = line.split()
            if _unescape(fields[4]) == target:
                return fields[2]
    return None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape")


def is_mounted(mountpoint: Path) -> bool:
    return mount_device(mountpoint) is not None


def check_can_mount(mountpoint: Path) -> None:
    """Refuse early, with a reason, what libfuse would refuse with a cryptic one."""
    if not mountpoint.exists():
        raise MountError(f"mount point {mountpoint} does not exist")
    if not mountpoint.is_dir():
        raise MountError(f"mount point {mountpoint} is not a directory")
    if is_mounted(mountpoint):
        raise MountError(f"{mountpoint} is busy: something is already mounted there (dfs umount {mountpoint})")
    if not Path("/dev/fuse").exists():
        raise MountError("FUSE is not available: /dev/fuse is missing (load the fuse module, or run with --device)")
    if shutil.which("fusermount3") is None and os.geteuid() != 0:
        raise MountError("FUSE is not available: fusermount3 is not installed (apt-get install fuse3)")
    load_fuse()


def load_fuse() -> Any:
    """Import mfusepy on libfuse3; a clear MountError if the library is missing."""
    os.environ.setdefault("FUSE_LIBRARY_PATH", _find_libfuse3() or "")
    if not os.environ["FUSE_LIBRARY_PATH"]:
        del os.environ["FUSE_LIBRARY_PATH"]
        raise MountError("FUSE is not available: libfuse3 is not installed (apt-get install fuse3)")
    try:
        import mfusepy
    except (OSError, ImportError) as exc:
        raise MountError(f"FUSE is not available: {exc}") from exc
    if mfusepy.fuse_version_major != 3:
        raise MountError(f"libfuse3 is required, found libfuse {mfusepy.fuse_version_major}")
    return mfusepy


def _find_libfuse3() -> str | None:
    return ctypes.util.find_library("fuse3")


def run_mount(mountpoint: Path, options: MountOptions) -> None:
    """Mount and serve in this process until unmounted (SIGINT/SIGTERM unmount cleanly)."""
    check_can_mount(mountpoint)
    mfusepy = load_fuse()

    from client import DFSClient
    from fuse_mount.operations import DfsOperations

    fs = DFSClient(
        options.namenode,
        user=options.user,
        umask=0,  # the kernel already applied the calling process's umask to every mode we get
        retry_wait=options.retry_wait,
        token=options.token,
        ca_file=options.ca_file,
    )
    try:
        fs.info()  # a NameNode that is not there is an error now, not an EIO on every call
        operations = DfsOperations(
            fs,
            caller=mfusepy.fuse_get_context,
            cache_ttl=options.cache_ttl,
            read_only=options.read_only,
            spool_dir=options.spool_dir,
        )
        fuse_options: dict[str, Any] = {
            "fsname": f"dfs:{fs.namenode}",
            "subtype": "dfs",
            "default_permissions": True,
        }
        if options.allow_other:
            fuse_options["allow_other"] = True
        if options.read_only:
            fuse_options["ro"] = True
        if options.readahead_kib > 0:
            _tune_readahead_when_mounted(mountpoint, options.readahead_kib)
        fuse_class = _fuse_class(mfusepy)
        fuse_class(operations, str(mountpoint), foreground=True, debug=options.debug, **fuse_options)
    finally:
        fs.close()


def unmount(mountpoint: Path, *, lazy: bool = False) -> None:
    """Unmount a dfs mount; MountError (with fusermount's reason) if it cannot be done."""
    if not is_mounted(mountpoint):
        raise MountError(f"{mountpoint} is not mounted")
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    command = [tool, "-u", *(["-z"] if lazy else []), str(mountpoint)] if tool else ["umount", str(mountpoint)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = result.stderr.strip() or f"{command[0]} exited with {result.returncode}"
        if "busy" in reason.lower():
            reason += " (files are open on it; close them or use --lazy)"
        raise MountError(f"could not unmount {mountpoint}: {reason}")


def wait_until_mounted(mountpoint: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a mount started in another process; MountError if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while not is_mounted(mountpoint):
        if process.poll() is not None:
            raise MountError(f"the mount process exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise MountError(f"{mountpoint} was not mounted after {timeout:.0f}s")
        time.sleep(0.05)


def _tune_readahead_when_mounted(mountpoint: Path, kib: int) -> None:
    """Raise the kernel's readahead for this mount once it exists (root only; harmless otherwise)."""

    def tune() -> None:
        deadline = time.monotonic() + 30
        while (device := mount_device(mountpoint)) is None:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        setting = Path(f"/sys/class/bdi/{device}/read_ahead_kb")
        try:
            setting.write_text(f"{kib}\n")
        except OSError as exc:
            log.info("kernel readahead left as it is (%s): %s", setting, exc)

    threading.Thread(target=tune, name="dfs-mount-readahead", daemon=True).start()


def _fuse_class(mfusepy: Any) -> type:
    """mfusepy's FUSE with the libfuse3 arguments it drops passed on to our operations."""

    class DfsFuse(mfusepy.FUSE):  # type: ignore[misc]
        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return int(self.operations.rename(self._decode(old), self._decode(new), flags))

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            fh = fip.contents.fh if fip else None
            return int(self.operations.truncate(None if path is None else self._decode(path), length, fh))

        def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
            times = None
            if buf:
                times = (_timespec_ns(buf.contents.actime), _timespec_ns(buf.contents.modtime))
            return int(self.operations.utimens(None if path is None else self._decode(path), times))

        def _decode(self, raw: bytes) -> str:
            return raw.decode(self.encoding, self.errors)

    return DfsFuse


def _timespec_ns(spec: Any) -> int | None:
    """A utimensat timespec in ns; None for UTIME_OMIT (leave it), now for UTIME_NOW."""
    if spec.tv_nsec == UTIME_OMIT:
        return None
    if spec.tv_nsec == UTIME_NOW:
        return time.time_ns()
    return int(spec.tv_sec) * 1_000_000_000 + int(spec.tv_nsec)


__all__ = [
    "DEFAULT_READAHEAD_KIB",
    "MountError",
    "MountOptions",
    "check_can_mount",
    "is_mounted",
    "run_mount",
    "unmount",
    "wait_until_mounted",
]
