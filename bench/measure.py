"""Measuring helpers the benchmarks share: page-cache drops, CPU time from /proc, input files."""

from __future__ import annotations

import os
from pathlib import Path

MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def drop_caches() -> bool:
    """Write back and drop the page cache so reads are cold; False without the right (not root)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def proc_cpu(pids: list[int]) -> float:
    """utime + stime of these processes, from /proc (a process that is gone counts 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def make_source(path: Path, size: int) -> None:
    """Random bytes, generated and written 8 MiB at a time so memory stays bounded."""
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = os.urandom(min(8 * MIB, size - written))
            handle.write(piece)
            written += len(piece)
