"""User (delegation) tokens: issue, verify, list, revoke.

A token is verified by its signature and expiry alone (no database round trip on the hot
path); revocation is checked against an in-memory set of revoked ids, loaded at start and
refreshed by every background pass, so a token revoked on one NameNode stops working on all
of them within one pass.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from client.protocol.errors import DfsFileNotFoundError, DfsPermissionError, InvalidArgumentError, UnauthenticatedError
from client.protocol.security import (
    CLUSTER_AUTH_WINDOW_S,
    InvalidCredentialError,
    IssuedToken,
    TokenInfo,
    UserTokenClaims,
    sign_token,
    user_token_key,
    verify_signed,
)
from namenode.db.database import Database
from namenode.db.models import UserToken

log = structlog.get_logger(__name__)


def _info(row: UserToken) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        user=row.user,
        issued_by=row.issued_by,
        issued_ms=row.issued_ms,
        expires_ms=row.expires_ms,
        revoked=row.revoked_ms is not None,
        description=row.description,
    )


class UserTokens:
    def __init__(
        self,
        db: Database,
        secret: str,
        *,
        default_ttl_s: float,
        max_ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.default_ttl_s = default_ttl_s
        self.max_ttl_s = max_ttl_s
        self.clock = clock
        self._key = user_token_key(secret)
        self._revoked: frozenset[str] = frozenset()

    # --- the hot path ----------------------------------------------------------------------

    def verify(self, token: str) -> UserTokenClaims:
        """The claims of a valid token; UnauthenticatedError says why one is not."""
        try:
            claims = verify_signed(token, UserTokenClaims, self._key)
        except InvalidCredentialError as exc:
            raise UnauthenticatedError(f"invalid token: {exc}") from None
        now_ms = self.clock() * 1000
        if claims.expires_ms <= now_ms:
            raise UnauthenticatedError(f"token {claims.token_id} of {claims.user} has expired")
        if claims.issued_ms > now_ms + CLUSTER_AUTH_WINDOW_S * 1000:
            raise UnauthenticatedError(f"token {claims.token_id} was issued in the future (check the clocks)")
        if claims.token_id in self._revoked:
            raise UnauthenticatedError(f"token {claims.token_id} of {claims.user} has been revoked")
        return claims

    # --- management ------------------------------------------------------------------------

    async def issue(self, user: str, issued_by: str, ttl_s: float | None, description: str) -> IssuedToken:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl > self.max_ttl_s:
            raise InvalidArgumentError(f"ttl {ttl:g} s exceeds the NameNode's maximum of {self.max_ttl_s:g} s")
        now_ms = int(self.clock() * 1000)
        claims = UserTokenClaims(
            token_id=secrets.token_urlsafe(12), user=user, issued_ms=now_ms, expires_ms=now_ms + int(ttl * 1000)
        )
        row = UserToken(
            token_id=claims.token_id,
            user=user,
            issued_by=issued_by,
            issued_ms=claims.issued_ms,
            expires_ms=claims.expires_ms,
            revoked_ms=None,
            description=description,
        )

        def store(session: Session) -> TokenInfo:
            session.add(row)
            session.flush()
            return _info(row)

        info = await self.db.write(store)
        log.info("token issued", token_id=info.token_id, user=user, issued_by=issued_by, ttl_s=ttl)
        return IssuedToken(token=sign_token(self._key, claims), info=info)

    async def unexpired(self, user: str | None) -> list[TokenInfo]:
        """Unexpired tokens, of one user or (None) everyone's."""
        now_ms = int(self.clock() * 1000)

        def query(session: Session) -> list[TokenInfo]:
            statement = select(UserToken).where(UserToken.expires_ms > now_ms).order_by(UserToken.issued_ms)
            if user is not None:
                statement = statement.where(UserToken.user == user)
            return [_info(row) for row in session.scalars(statement)]

        return await self.db.read(query)

    async def revoke(self, token_id: str, caller: str, caller_is_superuser: bool) -> TokenInfo:
        now_ms = int(self.clock() * 1000)

        def mark(session: Session) -> TokenInfo:
            row = session.get(UserToken, token_id)
            if row is None:
                raise DfsFileNotFoundError(f"no token with id {token_id}")
            if not caller_is_superuser and caller != row.user:
                raise DfsPermissionError(f"Permission denied: user={caller} may not revoke a token of {row.user}")
            if row.revoked_ms is None:
                row.revoked_ms = now_ms
            return _info(row)

        info = await self.db.write(mark)
        self._revoked = self._revoked | {token_id}
        log.info("token revoked", token_id=token_id, user=info.user, by=caller)
        return info

    def load_revoked(self, session: Session) -> None:
        """Refresh the revoked set from the database (revoked and not yet expired)."""
        now_ms = int(self.clock() * 1000)
        rows = session.scalars(
            select(UserToken.token_id).where(UserToken.revoked_ms.is_not(None), UserToken.expires_ms > now_ms)
        )
        self._revoked = frozenset(rows)
