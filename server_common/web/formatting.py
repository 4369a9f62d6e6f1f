"""Human-readable numbers for the status pages (Jinja filters); pure functions."""

from __future__ import annotations

import datetime as dt
import stat

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
#: What a cell shows for a value that does not exist yet (an en dash, as tables print it).
NOTHING = "\u2013"


def human_bytes(value: float | None) -> str:
    """1536 -> '1.5 KiB'; binary units, as `dfs ls -h` and `du -h` print them."""
    if value is None:
        return NOTHING
    amount = float(value)
    for unit in _UNITS:
        if abs(amount) < 1024 or unit == _UNITS[-1]:
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def human_rate(bytes_per_s: float | None) -> str:
    """Bytes per second as MB/s (decimal, as benchmarks and disks are quoted)."""
    if bytes_per_s is None:
        return NOTHING
    return f"{bytes_per_s / 1e6:.1f} MB/s"


def human_duration(seconds: float | None) -> str:
    """3725 -> '1h 2m'; short enough for a table cell."""
    if seconds is None:
        return NOTHING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {int(seconds) % 60}s"


def percent(part: float, whole: float) -> float:
    """part/whole in percent, 0 for an empty whole (a node that reports no capacity)."""
    return 100.0 * part / whole if whole > 0 else 0.0


def utc_time(unix_s: float | None) -> str:
    """Unix seconds as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if unix_s is None:
        return NOTHING
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_time_ms(unix_ms: int | None) -> str:
    """File times are milliseconds since the epoch on the wire."""
    return utc_time(None if unix_ms is None else unix_ms / 1000)


def permission_string(mode: int, is_dir: bool) -> str:
    """0o755 + directory -> 'drwxr-xr-x', as `ls -l` prints it."""
    return stat.filemode(mode | (stat.S_IFDIR if is_dir else stat.S_IFREG))
