"""Output helpers for the shell: sizes, times, modes, JSON, errors on stderr."""

from __future__ import annotations

import datetime
import json
import stat as stat_mod
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from client.protocol.client_namenode import FileStatus

stderr = Console(stderr=True, highlight=False)


def human_size(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def mode_string(status: FileStatus) -> str:
    """'drwxr-xr-x' style permissions."""
    kind = stat_mod.S_IFDIR if status.is_dir else stat_mod.S_IFREG
    return stat_mod.filemode(kind | status.mode)


def timestamp(milliseconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        payload: Any = value.model_dump(mode="json")
    elif isinstance(value, Sequence):
        payload = [item.model_dump(mode="json") for item in value]
    else:
        payload = value
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


def error(message: str) -> None:
    """One line on stderr, prefixed with the program name."""
    stderr.print(f"dfs: {message}", markup=False, soft_wrap=True)
