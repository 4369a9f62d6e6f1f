"""A real FUSE mount of a test cluster, started and stopped the way a user does it (`dfs mount`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from client.local_cluster import wait_until
from fuse_mount.mount import is_mounted


def fuse_available() -> str | None:
    """None if this machine can mount FUSE file systems, else why not."""
    if not Path("/dev/fuse").exists():
        return "/dev/fuse is missing"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (apt-get install fuse3)"
    return None


def require_fuse() -> None:
    """Skip without FUSE, unless DFS_REQUIRE_FUSE=1 (CI), where a missing FUSE is an error."""
    reason = fuse_available()
    if reason is None:
        return
    if os.environ.get("DFS_REQUIRE_FUSE") == "1":
        raise RuntimeError(f"DFS_REQUIRE_FUSE=1 but FUSE cannot be used: {reason}")
    pytest.skip(f"no FUSE: {reason}")


def dfs_command(namenode: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "client.cli", "--namenode", namenode, *args]


class Mount:
    """`dfs mount` in the background; `stop()` unmounts and makes sure the process is gone."""

    def __init__(self, namenode: str, path: Path, log_path: Path, args: Sequence[str] = ()) -> None:
        self.namenode = namenode
        self.path = path
        self.log_path = log_path
        self.args = list(args)
        self.pid: int | None = None

    def start(self) -> Mount:
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            dfs_command(self.namenode, "mount", str(self.path), "--log-file", str(self.log_path), *self.args),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, f"dfs mount failed: {result.stderr}\n{self.log_tail()}"
        match = re.search(r"pid (\d+)", result.stderr)
        assert match, result.stderr
        self.pid = int(match.group(1))
        return self

    def stop(self) -> None:
        """Unmount (the process syncs open files and exits); force it if it will not go."""
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True, timeout=60)
        if self.pid is not None and not _wait_gone(self.pid, 30):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _wait_gone(self.pid, 10)
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True, timeout=60)
        self.pid = None

    @property
    def alive(self) -> bool:
        return self.pid is not None and _alive(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def remote(self, local: Path) -> str:
        """The namespace path of a path on this mount."""
        return "/" + str(local.relative_to(self.path)) if local != self.path else "/"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of ours that exited stays a zombie until reaped; it is gone all the same.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return status != "Z"
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    try:
        wait_until(lambda: not _alive(pid), timeout, f"mount process {pid} to exit")
    except TimeoutError:
        return False
    return True
