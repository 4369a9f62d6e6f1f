"""Shared state of one `dfs` invocation: where the NameNode is and who we are."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from client.protocol import paths
from client.sync_client import DFSClient


@dataclass
class CliContext:
    namenode: str | None
    user: str | None
    retry_wait: float = 30.0

    def client(self) -> DFSClient:
        return DFSClient(self.namenode, user=self.user, retry_wait=self.retry_wait)


def get_context(ctx: typer.Context) -> CliContext:
    value = ctx.find_root().obj
    assert isinstance(value, CliContext)
    return value


def remote_path(text: str) -> str:
    """A path as typed (relative paths start at '/'); normalised, then validated."""
    return paths.normalize_user_path(text)
