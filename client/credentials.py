"""What a client shows the NameNode to say who it is (docs/security.md).

- A user token (``Authorization: Bearer``), from `dfs token create`: required in token mode.
- The cluster secret, for operators bootstrapping token mode (`dfs token create --secret-file`):
  each request is signed (client.protocol.security) and acts as the superuser.
- Neither: "simple" mode, where the `X-DFS-User` header states the user.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import httpx

from client.protocol.errors import InvalidArgumentError
from client.protocol.security import HEADER_CLUSTER_AUTH, cluster_request_key, sign_request
from server_common.cluster_secret import ClusterSecretError, read_secret_file


def default_token() -> str:
    """$DFS_TOKEN, else the contents of $DFS_TOKEN_FILE, else none."""
    if token := os.environ.get("DFS_TOKEN", "").strip():
        return token
    if path := os.environ.get("DFS_TOKEN_FILE"):
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read DFS_TOKEN_FILE {path}: {exc.strerror or exc}") from None
    return ""


class ClusterSecretAuth(httpx.Auth):
    """Signs each request with the cluster secret (method, path and query, time, body)."""

    requires_request_body = True

    def __init__(self, secret: str) -> None:
        self._key = cluster_request_key(secret)

    @classmethod
    def from_file(cls, path: str | Path) -> ClusterSecretAuth:
        try:
            return cls(read_secret_file(Path(path)))
        except ClusterSecretError as exc:
            raise InvalidArgumentError(str(exc)) from None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("latin-1")
        request.headers[HEADER_CLUSTER_AUTH] = sign_request(self._key, request.method, target, request.content)
        yield request
