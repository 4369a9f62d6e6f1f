"""Checking block access tokens: no byte is read or written on a DataNode without one.

The key a token names is derived from the cluster secret (client.protocol.security), so no
key has to reach this node. A key is accepted only while a token it signed could still be
valid (its epoch start plus one rotation plus the token lifetime, with clock slack), so a key
that leaks stops working on its own. Until the NameNode has told us its policy at
registration, tokens are required and the most recent policy defaults apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from client.protocol.errors import InvalidBlockTokenError
from client.protocol.security import (
    CLUSTER_AUTH_WINDOW_S,
    BlockAccessMode,
    BlockTokenClaims,
    BlockTokenPolicy,
    InvalidCredentialError,
    block_key,
    read_claims,
    verify_signed,
)

log = structlog.get_logger(__name__)

#: What is assumed before the NameNode has said otherwise (the NameNode's own defaults).
DEFAULT_POLICY = BlockTokenPolicy(required=True, key_rotation_s=3600.0, lifetime_s=3600.0)


class BlockTokenVerifier:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.policy = DEFAULT_POLICY
        self.clock = clock
        self._secret = secret

    def configure(self, policy: BlockTokenPolicy | None) -> None:
        """Adopt the policy the NameNode sent at registration."""
        if policy is not None:
            self.policy = policy

    def check(self, token: str | None, block_id: int, mode: BlockAccessMode, *, peer: str | None = None) -> str:
        """The token's user if `token` allows `mode` on `block_id`; else InvalidBlockTokenError (403).

        With tokens switched off by the NameNode, anything passes (and no user is known)."""
        if not self.policy.required:
            return ""
        try:
            claims = self._verified(token, block_id, mode)
        except InvalidBlockTokenError as exc:
            log.warning("block token refused", block=block_id, mode=mode.value, reason=exc.message, peer=peer)
            raise
        return claims.user

    def _verified(self, token: str | None, block_id: int, mode: BlockAccessMode) -> BlockTokenClaims:
        if not token:
            raise InvalidBlockTokenError(f"block {block_id}: no block access token")
        now = self.clock()
        policy = self.policy
        try:
            # The epoch must be plausible before a key is derived for it (bounded work per request).
            epoch = _claimed_epoch(token)
            oldest = now - policy.key_rotation_s - policy.lifetime_s - CLUSTER_AUTH_WINDOW_S
            if not oldest <= epoch <= now + CLUSTER_AUTH_WINDOW_S:
                raise InvalidCredentialError("its key has been retired")
            claims = verify_signed(token, BlockTokenClaims, block_key(self._secret, epoch))
        except InvalidCredentialError as exc:
            raise InvalidBlockTokenError(f"block {block_id}: invalid block access token ({exc})") from None
        if claims.expires_ms <= now * 1000:
            raise InvalidBlockTokenError(f"block {block_id}: block access token expired")
        if claims.expires_ms > (epoch + policy.key_rotation_s + policy.lifetime_s + CLUSTER_AUTH_WINDOW_S) * 1000:
            raise InvalidBlockTokenError(f"block {block_id}: block access token outlives its key")
        if claims.block_id != block_id:
            raise InvalidBlockTokenError(f"block {block_id}: the block access token is for block {claims.block_id}")
        if mode not in claims.modes:
            granted = ",".join(m.value for m in claims.modes)
            raise InvalidBlockTokenError(f"block {block_id}: the block access token allows {granted}, not {mode.value}")
        return claims


def _claimed_epoch(token: str) -> int:
    return read_claims(token, BlockTokenClaims).key_epoch
