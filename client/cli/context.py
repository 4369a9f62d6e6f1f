"""Shared state of one `dfs` invocation: where the NameNode is and who we are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from client.protocol import paths
from client.sync_client import DFSClient


@dataclass
class CliContext:
    namenode: str | None
    user: str | None
    retry_wait: float = 30.0
    #: A user token (token mode); None: $DFS_TOKEN / $DFS_TOKEN_FILE, as the SDK reads them.
    token: str | None = None
    #: The CA bundle for https NameNodes and DataNodes; None: $DFS_CA_FILE, else the system store.
    ca_file: Path | None = None

    def client(self, **overrides: Any) -> DFSClient:
        options: dict[str, Any] = {"user": self.user, "retry_wait": self.retry_wait, "token": self.token}
        options["ca_file"] = self.ca_file
        return DFSClient(self.namenode, **{**options, **overrides})


def get_context(ctx: typer.Context) -> CliContext:
    value = ctx.find_root().obj
    assert isinstance(value, CliContext)
    return value


def remote_path(text: str) -> str:
    """A path as typed (relative paths start at '/'); normalised, then validated."""
    return paths.normalize_user_path(text)
