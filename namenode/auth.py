"""Who is calling: a user token, a cluster-signed request, or (simple mode) the stated user name.

The one place the NameNode turns request credentials into a user name (docs/security.md):

1. ``Authorization: Bearer <token>``: the token's user, in either mode; a bad token is refused,
   never ignored.
2. ``X-DFS-Cluster-Auth``: a request signed with the cluster secret (DataNodes, and operators
   bootstrapping token mode with `dfs token create --secret-file`) acts as the superuser.
3. In "simple" mode only: the ``X-DFS-User`` header (HDFS's simple authentication), else
   "anonymous". In "token" mode a request with neither is refused with 401.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import Request

from client.protocol.common import HEADER_USER
from client.protocol.errors import InvalidArgumentError, UnauthenticatedError
from client.protocol.security import (
    HEADER_AUTHORIZATION,
    HEADER_CLUSTER_AUTH,
    InvalidCredentialError,
    cluster_request_key,
    verify_request,
)
from namenode.user_tokens import UserTokens

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"
MAX_USER_LENGTH = 256


def request_target(request: Request) -> str:
    """The path and query exactly as sent (what a cluster signature covers)."""
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    return (raw_path + (b"?" + query if query else b"")).decode("latin-1")


class Authenticator:
    def __init__(self, secret: str, tokens: UserTokens, *, token_mode: bool, superuser: Callable[[], str]) -> None:
        self.tokens = tokens
        self.token_mode = token_mode
        self.superuser = superuser
        self._request_key = cluster_request_key(secret)

    async def caller(self, request: Request) -> str:
        """The user a client request acts as; UnauthenticatedError (401) if it cannot be trusted."""
        authorization = request.headers.get(HEADER_AUTHORIZATION)
        if authorization is not None:
            return self.token_user(bearer_token(authorization))
        if HEADER_CLUSTER_AUTH in request.headers:
            await self.verify_cluster_request(request)
            return self.superuser()
        if self.token_mode:
            raise UnauthenticatedError(
                "this cluster requires a token: get one with `dfs token create` and pass it as "
                "`Authorization: Bearer <token>` ($DFS_TOKEN for the SDK and CLI)"
            )
        return stated_user(request.headers.get(HEADER_USER))

    def token_user(self, token: str) -> str:
        try:
            return self.tokens.verify(token).user
        except UnauthenticatedError as exc:
            log.warning("token refused", reason=exc.message)
            raise

    async def verify_cluster_request(self, request: Request) -> None:
        """Raise UnauthenticatedError unless the request is signed with the cluster secret."""
        header = request.headers.get(HEADER_CLUSTER_AUTH)
        if header is None:
            raise UnauthenticatedError(
                f"DataNode requests must be signed with the cluster secret ({HEADER_CLUSTER_AUTH} header missing)"
            )
        body = await request.body()
        try:
            verify_request(self._request_key, header, request.method, request_target(request), body)
        except InvalidCredentialError as exc:
            peer = request.client.host if request.client else None
            log.warning("cluster authentication refused", reason=str(exc), peer=peer, route=request.url.path)
            raise UnauthenticatedError(f"cluster authentication failed: {exc}") from None


def bearer_token(authorization: str) -> str:
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
    return credential.strip()


def stated_user(name: str | None) -> str:
    """A user named in simple mode, checked for size."""
    if not name:
        return ANONYMOUS
    if len(name) > MAX_USER_LENGTH:
        raise InvalidArgumentError(f"user name longer than {MAX_USER_LENGTH} characters")
    return name
