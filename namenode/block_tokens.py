"""Issuing block access tokens: what a client (or a DataNode copying a replica) shows a DataNode.

Tokens are signed with the key of the current epoch, derived from the cluster secret
(client.protocol.security), so every NameNode signs with the same key and a restart loses
nothing. DataNodes learn the policy (lifetime, rotation) when they register.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from client.protocol.client_namenode import LocatedBlock, LocatedBlocks
from client.protocol.security import (
    BlockAccessMode,
    BlockTokenClaims,
    BlockTokenPolicy,
    block_key,
    sign_token,
)

READ = (BlockAccessMode.READ,)
WRITE = (BlockAccessMode.WRITE,)
REPLICATE = (BlockAccessMode.REPLICATE,)


class BlockTokenIssuer:
    def __init__(
        self,
        secret: str,
        *,
        enabled: bool,
        lifetime_s: float,
        rotation_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = enabled
        self.lifetime_s = lifetime_s
        self.rotation_s = rotation_s
        self.clock = clock
        self._secret = secret

    def policy(self) -> BlockTokenPolicy:
        return BlockTokenPolicy(required=self.enabled, key_rotation_s=self.rotation_s, lifetime_s=self.lifetime_s)

    def issue(self, block_id: int, user: str, modes: Iterable[BlockAccessMode]) -> str:
        """A token for `user` to use block `block_id` in `modes`; empty when tokens are off."""
        if not self.enabled:
            return ""
        now = self.clock()
        epoch = int(now // self.rotation_s * self.rotation_s)
        claims = BlockTokenClaims(
            key_epoch=epoch,
            block_id=block_id,
            user=user,
            modes=sorted(set(modes)),
            expires_ms=int((now + self.lifetime_s) * 1000),
        )
        return sign_token(block_key(self._secret, epoch), claims)

    def stamp(self, located: LocatedBlock, user: str, modes: Iterable[BlockAccessMode]) -> LocatedBlock:
        """`located` carrying a token for its block."""
        if not self.enabled:
            return located
        return located.model_copy(update={"token": self.issue(located.block.block_id, user, modes)})

    def stamp_all(self, located: LocatedBlocks, user: str) -> LocatedBlocks:
        """Read tokens for every block of a location answer."""
        if not self.enabled:
            return located
        return located.model_copy(update={"blocks": [self.stamp(block, user, READ) for block in located.blocks]})
